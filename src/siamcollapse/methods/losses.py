"""Losses as small pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """-cos(p, stopgrad(z)) averaged over the batch; -1 when p and z point the same way."""
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """SimSiam's symmetrised loss -(cos(p1, sg(z2)) + cos(p2, sg(z1))) / 2, in [-1, 1]."""
    return (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2


def normalized_std(z: torch.Tensor) -> torch.Tensor:
    """Mean per-dimension std of L2-normalised outputs: a collapse monitor.

    A healthy d-dimensional output has a value near 1/sqrt(d); complete collapse gives 0.
    """
    return F.normalize(z.detach().float(), dim=-1).std(dim=0).mean()
