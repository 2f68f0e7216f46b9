"""Features with known structure: Gaussian clusters, one per class."""

from __future__ import annotations

import torch


def clustered(n_per_class, classes=4, dim=16, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * 3
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[labels] + noise * torch.randn(len(labels), dim, generator=g), labels
