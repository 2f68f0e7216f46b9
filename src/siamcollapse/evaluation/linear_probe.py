"""Linear probe on cached, frozen features (the fast default).

One linear layer (weights N(0, 0.01), bias 0) on features standardised with the training
set's per-dimension mean and std (a BatchNorm without affine parameters, as in MAE's probe:
it makes the probe insensitive to the overall scale of a representation, which differs
wildly between trained and random-init backbones). Dimensions that are constant over the
training set (dead units, common in collapsed or untrained networks) are dropped rather than
divided by a tiny clamped std, which would turn float noise on val into huge inputs. SGD with
momentum 0.9, lr = lr x batch/256, cosine decay, weight decay 0 by default. Reports top-1 on val.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..progress import report as report_progress

# A dimension whose training-set std is at most this fraction of the largest one is constant
# up to float rounding (float32 noise is ~1e-7 relative).
ZERO_VARIANCE_RTOL = 1e-6


@dataclass(frozen=True)
class Standardiser:
    """Per-dimension (x - mean) / std over the kept (non-constant) dimensions of the training set."""

    mean: torch.Tensor
    std: torch.Tensor
    keep: torch.Tensor  # bool, one per input dimension

    @classmethod
    def fit(cls, train: torch.Tensor) -> Standardiser:
        std = train.std(dim=0)
        keep = std > ZERO_VARIANCE_RTOL * float(std.max()) if std.numel() else std > 0
        return cls(train.mean(dim=0)[keep], std[keep], keep)

    @property
    def dim(self) -> int:
        return int(self.keep.sum())

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        return (features[:, self.keep] - self.mean) / self.std


def train_linear_probe(train: torch.Tensor, train_labels: torch.Tensor, settings: dict[str, Any],
                       num_classes: int) -> tuple[nn.Linear, Standardiser]:
    """The probe head (over the kept dimensions) and the standardiser its inputs go through."""
    generator = torch.Generator().manual_seed(settings["seed"])
    standardiser = Standardiser.fit(train)
    if standardiser.dim == 0:
        raise ValueError("every feature dimension is constant over the training set: nothing to probe")
    inputs = standardiser(train)
    head = nn.Linear(standardiser.dim, num_classes)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.01)
        head.bias.zero_()
    batch = min(settings["batch_size"], len(inputs))
    initial_lr = settings["lr"] * batch / 256
    optimizer = torch.optim.SGD(head.parameters(), lr=initial_lr, momentum=0.9, weight_decay=settings["weight_decay"])
    steps_per_epoch = math.ceil(len(inputs) / batch)
    total = settings["epochs"] * steps_per_epoch
    for step in range(total):
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(inputs), generator=generator)
        idx = order[(step % steps_per_epoch) * batch:(step % steps_per_epoch + 1) * batch]
        for group in optimizer.param_groups:
            group["lr"] = initial_lr * 0.5 * (1 + math.cos(math.pi * step / total))
        loss = F.cross_entropy(head(inputs[idx]), train_labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        report_progress("linear probe", step + 1, total, unit="steps")
    return head, standardiser


@torch.no_grad()
def top1(head: nn.Linear, standardiser: Standardiser, features: torch.Tensor, labels: torch.Tensor) -> float:
    predicted = head(standardiser(features)).argmax(dim=1)
    return 100.0 * float((predicted == labels).float().mean())
