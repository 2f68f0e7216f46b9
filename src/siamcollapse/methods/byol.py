"""BYOL (Grill et al. 2020): predict the momentum network's projection of the other view.

The paper uses it, like MoCo-v3, as a baseline with a momentum encoder; no negatives are involved.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models.heads import mlp
from .base import StepOutput, register
from .losses import byol_loss
from .momentum import MomentumMethod


@register("byol")
class BYOL(MomentumMethod):
    """Projector d -> hidden -> out and predictor out -> pred_dim -> out (BN+ReLU in the middle,
    no biases), as the authors' ``autolearn/byol/builder.py``.

    Loss: ``byol_loss`` of each view's prediction against the target projection of the other
    view, summed over the two views as the authors do (0 when aligned, 4 for orthogonal outputs).
    """

    def __init__(self, backbone: nn.Module, settings: dict[str, Any], **context: Any) -> None:
        out = settings["proj_dim"]
        super().__init__(
            backbone,
            projector=mlp([backbone.feature_dim, settings["proj_hidden_dim"], out], last_bias=False),
            predictor=mlp([out, settings["pred_dim"], out], last_bias=False),
            ema_momentum=settings["ema_momentum"],
        )

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        z1, p1 = self.encode(view1)
        _, p2 = self.encode(view2)
        t1, t2 = self.encode_target(view1), self.encode_target(view2)
        loss = byol_loss(p1, t2) + byol_loss(p2, t1)
        return StepOutput(loss=loss, projections=z1)
