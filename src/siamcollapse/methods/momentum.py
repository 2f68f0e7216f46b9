"""Momentum (EMA) target networks, shared by MoCo-v3 and BYOL.

``momentum_at`` is the cosine schedule of both papers: the EMA coefficient starts at ``m0`` and
rises to 1 at the end of training. ``MomentumUpdater`` applies it to a set of target modules,
and ``MomentumMethod`` is the common skeleton of both methods: an online backbone, projector and
predictor, and a frozen momentum copy of the backbone and projector that only moves in
``on_step_end``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .base import Method


def momentum_at(base: float, progress: float) -> float:
    """EMA coefficient ``1 - (1 - base) * (cos(pi * progress) + 1) / 2``: ``base`` at 0, 1 at 1."""
    return 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` whose parameters take no gradient."""
    return copy.deepcopy(module).requires_grad_(False)


class MomentumUpdater:
    """Keeps ``target`` modules an exponential moving average of ``online`` ones.

    At construction the online weights are copied into the targets and the targets are frozen.
    Only parameters are averaged: a target's BN running statistics come from its own forward
    passes, as in MoCo-v3 and BYOL. This is a plain object, not a module, so the modules it
    refers to are not registered twice; it looks their parameters up at every update, which keeps
    it valid after ``.to(device)`` or ``SyncBatchNorm`` conversion of the owning model.
    """

    def __init__(self, online: Sequence[nn.Module], target: Sequence[nn.Module], base_momentum: float) -> None:
        if len(online) != len(target):
            raise ValueError(f"{len(online)} online modules but {len(target)} targets")
        if not 0 <= base_momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], got {base_momentum}")
        self.online, self.target, self.base_momentum = list(online), list(target), base_momentum
        self._pairs()  # fails now, with a clear message, if the structures differ
        for src, dst in zip(self.online, self.target):
            dst.load_state_dict(src.state_dict())
            dst.requires_grad_(False)

    def _pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        online = [p for m in self.online for p in m.parameters()]
        target = [p for m in self.target for p in m.parameters()]
        if len(online) != len(target) or any(a.shape != b.shape for a, b in zip(online, target)):
            raise ValueError("online and target modules have different parameters")
        return online, target

    @torch.no_grad()
    def update(self, progress: float) -> float:
        """target <- m * target + (1 - m) * online with ``m = momentum_at(base, progress)``; returns m."""
        m = momentum_at(self.base_momentum, progress)
        online, target = self._pairs()
        # One fused kernel per dtype/device instead of one per tensor (what torch optimisers use).
        torch._foreach_lerp_(target, [p.detach() for p in online], 1 - m)
        return m


class MomentumMethod(Method):
    """Online backbone + projector + predictor with a momentum copy of backbone + projector.

    Subclasses define the heads and ``forward``; ``encode`` and ``encode_target`` run the two
    branches. The momentum copy takes no gradient, is left out of ``param_groups`` and moves only
    in ``on_step_end``.
    """

    def __init__(self, backbone: nn.Module, projector: nn.Module, predictor: nn.Module, ema_momentum: float) -> None:
        super().__init__()
        self.backbone, self.projector, self.predictor = backbone, projector, predictor
        self.momentum_backbone = frozen_copy(backbone)
        self.momentum_projector = frozen_copy(projector)
        self.momentum = MomentumUpdater([self.backbone, self.projector],
                                        [self.momentum_backbone, self.momentum_projector], ema_momentum)

    def encode(self, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Online (projection z, prediction p) of one view."""
        z = self.projector(self.backbone(view))
        return z, self.predictor(z)

    @torch.no_grad()
    def encode_target(self, view: torch.Tensor) -> torch.Tensor:
        """The momentum branch's projection of one view (no gradient)."""
        return self.momentum_projector(self.momentum_backbone(view))

    def param_groups(self) -> list[dict[str, Any]]:
        online = (self.backbone, self.projector, self.predictor)
        return [{"params": [p for m in online for p in m.parameters() if p.requires_grad], "fix_lr": False}]

    def on_step_end(self, progress: float) -> None:
        self.momentum.update(progress)
