"""Learning-rate schedules (per epoch, as in the SimSiam reference code)."""

from __future__ import annotations

import math

import torch


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """The linear scaling rule: lr = base_lr x batch / 256."""
    return base_lr * batch_size / 256


def cosine_lr(initial_lr: float, epoch: int, epochs: int) -> float:
    """Cosine decay from ``initial_lr`` at epoch 0 towards 0 at ``epochs``, no warmup."""
    return initial_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def set_epoch_lr(optimizer: torch.optim.Optimizer, initial_lr: float, epoch: int, epochs: int) -> float:
    """Apply the cosine lr of ``epoch``; groups marked ``fix_lr`` stay at ``initial_lr``."""
    lr = cosine_lr(initial_lr, epoch, epochs)
    for group in optimizer.param_groups:
        group["lr"] = initial_lr if group.get("fix_lr") else lr
    return lr
