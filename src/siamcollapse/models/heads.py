"""SimSiam's projector and predictor (Chen & He 2021, as in the authors' code)."""

from __future__ import annotations

from torch import nn


def projector(in_dim: int, out_dim: int = 2048) -> nn.Sequential:
    """3-layer MLP in_dim -> in_dim -> in_dim -> out_dim, BN+ReLU between layers.

    The last layer is followed by an affine-free BN; the last linear layer's bias is frozen
    (it would be cancelled by that BN anyway).
    """
    head = nn.Sequential(
        nn.Linear(in_dim, in_dim, bias=False),
        nn.BatchNorm1d(in_dim),
        nn.ReLU(inplace=True),
        nn.Linear(in_dim, in_dim, bias=False),
        nn.BatchNorm1d(in_dim),
        nn.ReLU(inplace=True),
        nn.Linear(in_dim, out_dim),
        nn.BatchNorm1d(out_dim, affine=False),
    )
    head[6].bias.requires_grad = False
    return head


def predictor(dim: int = 2048, hidden: int = 512) -> nn.Sequential:
    """2-layer bottleneck MLP dim -> hidden -> dim with BN+ReLU in the middle."""
    return nn.Sequential(
        nn.Linear(dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, dim),
    )
