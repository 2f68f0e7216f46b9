"""Projector and predictor MLPs of the Siamese methods, all built by ``mlp``.

SimSiam's heads follow the authors' code (Chen & He 2021); MoCo-v3 and BYOL build theirs from
``mlp`` with the dimensions of their papers (hidden 4096, output 256 on ImageNet).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from torch import nn


def mlp(dims: Sequence[int], last_bn: bool = False, last_bias: bool = True) -> nn.Sequential:
    """Linear layers ``dims[0] -> dims[1] -> ... -> dims[-1]`` with BN+ReLU after every hidden layer.

    Hidden linear layers have no bias (the BN after them cancels it). The last linear layer has a
    bias unless ``last_bias`` is False (MoCo-v3's and BYOL's heads: no linear layer has one); with
    ``last_bn`` it is followed by an affine-free BN and a bias is frozen, since that BN cancels it
    too (SimSiam's projector). ``mlp([a, b, c])`` = Linear(a, b), BN(b), ReLU, Linear(b, c).
    """
    if len(dims) < 2:
        raise ValueError(f"an MLP needs at least an input and an output dimension, got {list(dims)}")
    layers: list[nn.Module] = []
    for d_in, d_out in pairwise(dims[:-1]):
        layers += [nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
    last = nn.Linear(dims[-2], dims[-1], bias=last_bias)
    layers.append(last)
    if last_bn:
        if last_bias:
            last.bias.requires_grad = False
        layers.append(nn.BatchNorm1d(dims[-1], affine=False))
    return nn.Sequential(*layers)


def projector(in_dim: int, out_dim: int = 2048) -> nn.Sequential:
    """SimSiam's 3-layer projector in_dim -> in_dim -> in_dim -> out_dim, BN+ReLU between layers.

    The last layer is followed by an affine-free BN; the last linear layer's bias is frozen
    (it would be cancelled by that BN anyway).
    """
    return mlp([in_dim, in_dim, in_dim, out_dim], last_bn=True)


def predictor(dim: int = 2048, hidden: int = 512) -> nn.Sequential:
    """SimSiam's 2-layer bottleneck predictor dim -> hidden -> dim with BN+ReLU in the middle."""
    return mlp([dim, hidden, dim])
