"""MoCo-v3 (Chen, Xie & He 2021) with its ResNet heads: the paper's contrastive baseline.

Queries come from the online backbone + projector + predictor, keys from a momentum copy of
backbone + projector. Each process scores its queries against the keys of the whole global batch,
so the negatives do not depend on the number of processes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..distributed import gather, rank_and_world
from ..models.heads import mlp
from ..models.vit import ViTSmall
from .base import StepOutput, register
from .losses import info_nce
from .momentum import MomentumMethod


@register("mocov3")
class MoCoV3(MomentumMethod):
    """As the authors' code (MoCo-v3's ``builder.py``): projector d -> hidden -> out on ResNets (a
    ViT gets a third layer, d -> hidden -> hidden -> out), ending in an affine-free BN; predictor
    out -> pred_dim -> out, which on a ViT also ends in an affine-free BN. No linear layer has a bias.

    The loss is symmetric over the two views; each term is ``info_nce`` (2 * temperature *
    cross-entropy), so a perfect model scores 0.
    """

    def __init__(self, backbone: nn.Module, settings: dict[str, Any], **context: Any) -> None:
        hidden, out = settings["proj_hidden_dim"], settings["proj_dim"]
        vit = isinstance(backbone, ViTSmall)
        hidden_layers = [hidden, hidden] if vit else [hidden]
        super().__init__(
            backbone,
            projector=mlp([backbone.feature_dim, *hidden_layers, out], last_bn=True, last_bias=False),
            predictor=mlp([out, settings["pred_dim"], out], last_bn=vit, last_bias=False),
            ema_momentum=settings["ema_momentum"],
        )
        self.temperature = settings["temperature"]

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        z1, q1 = self.encode(view1)
        _, q2 = self.encode(view2)
        k1, k2 = gather(self.encode_target(view1)), gather(self.encode_target(view2))
        rank, _ = rank_and_world()
        offset = rank * len(q1)  # this process's rows of the gathered keys
        loss = info_nce(q1, k2, self.temperature, offset) + info_nce(q2, k1, self.temperature, offset)
        return StepOutput(loss=loss, projections=z1)
