"""SimSiam (Chen & He, 2021): a Siamese network with a predictor and a stop-gradient."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.heads import predictor, projector
from .base import Method, StepOutput, register
from .losses import simsiam_loss


@register("simsiam")
class SimSiam(Method):
    def __init__(self, backbone: nn.Module, settings: dict[str, Any], **context: Any) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector(backbone.feature_dim, settings["proj_dim"])
        self.predictor = predictor(settings["proj_dim"], settings["pred_dim"])
        self.fix_pred_lr = settings["fix_pred_lr"]
        # NNSiam (a subclass) has no such key: its targets are queued neighbours, never differentiated
        self.stop_gradient = settings.get("stop_gradient", True)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        # One pass over both views: BN statistics are per view in the reference code, so keep
        # the two forward calls separate rather than concatenating the batches.
        z1 = self.projector(self.backbone(view1))
        z2 = self.projector(self.backbone(view2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return StepOutput(loss=simsiam_loss(p1, p2, z1, z2, self.stop_gradient), projections=z1)

    def param_groups(self) -> list[dict[str, Any]]:
        encoder = [p for m in (self.backbone, self.projector) for p in m.parameters() if p.requires_grad]
        return [
            {"params": encoder, "fix_lr": False},
            {"params": list(self.predictor.parameters()), "fix_lr": self.fix_pred_lr},
        ]
