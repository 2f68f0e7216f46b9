"""Learning-rate schedules: optional linear warmup per step, then cosine decay per epoch.

With no warmup this is SimSiam's reference schedule (cosine per epoch from the initial lr);
with ``warmup_epochs`` it is MoCo-v3's and BYOL's (linear ramp, then cosine over the rest).
"""

from __future__ import annotations

import math

import torch


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """The linear scaling rule: lr = base_lr x batch / 256."""
    return base_lr * batch_size / 256


def cosine_lr(initial_lr: float, epoch: float, epochs: float) -> float:
    """Cosine decay from ``initial_lr`` at epoch 0 towards 0 at ``epochs``, no warmup."""
    return initial_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def learning_rate(initial_lr: float, epoch: int, step: int, steps: int, epochs: int, warmup_epochs: float) -> float:
    """The lr of (0-based) ``step`` of ``epoch``.

    During warmup it rises linearly per step and reaches ``initial_lr`` at the last warmup step;
    afterwards it follows a per-epoch cosine over the remaining ``epochs - warmup_epochs``.
    """
    progress = epoch + (step + 1) / steps
    if progress <= warmup_epochs:
        return initial_lr * progress / warmup_epochs
    return cosine_lr(initial_lr, max(0.0, epoch - warmup_epochs), epochs - warmup_epochs)


def apply_lr(optimizer: torch.optim.Optimizer, lr: float, initial_lr: float) -> None:
    """Set ``lr`` on every group; groups marked ``fix_lr`` (SimSiam's predictor) stay at ``initial_lr``."""
    for group in optimizer.param_groups:
        group["lr"] = initial_lr if group.get("fix_lr") else lr
