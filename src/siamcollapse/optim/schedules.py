"""Learning-rate schedules: optional linear warmup per step, then cosine decay per epoch or per step.

With no warmup and per-epoch decay this is SimSiam's reference schedule (cosine per epoch from the
initial lr); with ``warmup_epochs`` and per-step decay it is MoCo-v3's and BYOL's (linear ramp,
then a cosine over the remaining steps). Groups marked ``fix_lr`` (SimSiam's predictor) keep the
initial lr after warmup but warm up with the others, as the authors' ``main_simsiam.py`` (the
paper's warmup experiment, supplement Table 2).
"""

from __future__ import annotations

import math
from typing import Any

import torch

LR_DECAYS = ("epoch", "step")


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """The linear scaling rule: lr = base_lr x batch / 256."""
    return base_lr * batch_size / 256


def cosine_lr(initial_lr: float, epoch: float, epochs: float) -> float:
    """Cosine decay from ``initial_lr`` at epoch 0 towards 0 at ``epochs``, no warmup."""
    return initial_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))


def _warmup_progress(epoch: int, step: int, steps: int) -> float:
    """Epochs done after (0-based) ``step`` of ``epoch``: the warmup reaches its top at its last step."""
    return epoch + (step + 1) / steps


def learning_rate(initial_lr: float, epoch: int, step: int, steps: int, epochs: int, warmup_epochs: float,
                  decay: str = "epoch") -> float:
    """The lr of (0-based) ``step`` of ``epoch``.

    During warmup it rises linearly per step and reaches ``initial_lr`` at the last warmup step;
    afterwards it follows a cosine over the remaining ``epochs - warmup_epochs``, evaluated once
    per epoch (``decay='epoch'``, SimSiam) or at every step (``decay='step'``, MoCo-v3 and BYOL:
    the fraction of epochs done when the step starts).
    """
    if decay not in LR_DECAYS:
        raise ValueError(f"unknown lr_decay {decay!r}; choose one of {', '.join(LR_DECAYS)}")
    progress = _warmup_progress(epoch, step, steps)
    if progress <= warmup_epochs:
        return initial_lr * progress / warmup_epochs
    position = epoch + step / steps if decay == "step" else epoch
    return cosine_lr(initial_lr, max(0.0, position - warmup_epochs), epochs - warmup_epochs)


def fixed_group_lr(initial_lr: float, epoch: int, step: int, steps: int, warmup_epochs: float) -> float:
    """The lr of a ``fix_lr`` group: the warmup ramp, then ``initial_lr`` for good."""
    progress = _warmup_progress(epoch, step, steps)
    if progress <= warmup_epochs:
        return initial_lr * progress / warmup_epochs
    return initial_lr


def apply_lr(optimizer: torch.optim.Optimizer, lr: float, fixed_lr: float) -> None:
    """Set ``lr`` on every group; groups marked ``fix_lr`` (SimSiam's predictor) get ``fixed_lr``."""
    for group in optimizer.param_groups:
        group["lr"] = fixed_lr if group.get("fix_lr") else lr


def scheduled_lr(initial_lr: float, epoch: int, step: int, steps: int, hp: dict[str, Any]) -> float:
    """``learning_rate`` with the pretraining settings ``hp`` (epochs, warmup_epochs, lr_decay)."""
    return learning_rate(initial_lr, epoch, step, steps, hp["epochs"], hp["warmup_epochs"],
                         hp.get("lr_decay", "epoch"))


def apply_scheduled_lr(optimizer: torch.optim.Optimizer, initial_lr: float, epoch: int, step: int, steps: int,
                       hp: dict[str, Any]) -> float:
    """Set every group's lr for (0-based) ``step`` of ``epoch`` from ``hp``; returns the main lr."""
    lr = scheduled_lr(initial_lr, epoch, step, steps, hp)
    apply_lr(optimizer, lr, fixed_group_lr(initial_lr, epoch, step, steps, hp["warmup_epochs"]))
    return lr
