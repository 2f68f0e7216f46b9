"""Linear probe on cached, frozen features (the fast default).

One linear layer (weights N(0, 0.01), bias 0) on features standardised with the training
set's per-dimension mean and std (a BatchNorm without affine parameters, as in MAE's probe:
it makes the probe insensitive to the overall scale of a representation, which differs
wildly between trained and random-init backbones). SGD with momentum 0.9, lr = lr x
batch/256, cosine decay, weight decay 0 by default. Reports top-1 on val.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _standardiser(train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = train.mean(dim=0)
    std = train.std(dim=0).clamp_min(1e-6)
    return mean, std


def train_linear_probe(train: torch.Tensor, train_labels: torch.Tensor, settings: dict[str, Any],
                       num_classes: int) -> tuple[nn.Linear, tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(settings["seed"])
    mean, std = _standardiser(train)
    inputs = (train - mean) / std
    head = nn.Linear(train.shape[1], num_classes)
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
    return head, (mean, std)


@torch.no_grad()
def top1(head: nn.Linear, standardiser: tuple[torch.Tensor, torch.Tensor], features: torch.Tensor,
         labels: torch.Tensor) -> float:
    mean, std = standardiser
    predicted = head((features - mean) / std).argmax(dim=1)
    return 100.0 * float((predicted == labels).float().mean())
