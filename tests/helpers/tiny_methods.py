"""Tiny methods for tests: settings small enough for seconds on a CPU, and random views."""

from __future__ import annotations

import torch
from torch import nn

from siamcollapse.methods import build_method
from siamcollapse.models.backbones import build_backbone

SETTINGS = {
    "mocov3": {"proj_hidden_dim": 32, "proj_dim": 16, "pred_dim": 32, "temperature": 1.0, "ema_momentum": 0.9},
    "byol": {"proj_hidden_dim": 32, "proj_dim": 16, "pred_dim": 32, "ema_momentum": 0.9},
    "nnsiam": {"proj_dim": 16, "pred_dim": 8, "fix_pred_lr": True, "queue_size": 64},
    "distill": {"stats_momentum": 0.5},
    "simsiam": {"proj_dim": 16, "pred_dim": 8, "fix_pred_lr": True, "stop_gradient": True},
}
MOMENTUM_METHODS = ["mocov3", "byol"]


def tiny_backbone() -> nn.Module:
    return build_backbone("resnet18", 8)


def make(name: str, seed: int = 0):
    torch.manual_seed(seed)
    context = {"teacher": tiny_backbone()} if name == "distill" else {}
    return build_method(name, tiny_backbone(), SETTINGS[name], **context)


def views(batch: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, 16, 16, generator=generator), torch.randn(batch, 3, 16, 16, generator=generator)
