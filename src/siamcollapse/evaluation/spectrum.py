"""The singular values of the centred representation matrix, computed while streaming.

For an N x d matrix X with column means m, the centred Gram matrix is
C = sum_i (x_i - m)(x_i - m)^T and the singular values of the centred X are sqrt(eig(C)).
Accumulating sum(x - r) and sum((x - r)(x - r)^T) in float64 around a reference r (the first
batch's mean) keeps the d x d state small and avoids the cancellation of the naive
sum(x x^T) - N m m^T when features have a large mean. The N x d matrix is never held.
"""

from __future__ import annotations

import numpy as np
import torch


class NonFiniteFeatures(ValueError):
    """The features hold NaN or infinite values: the network that made them has diverged."""


class SpectrumAccumulator:
    def __init__(self, dim: int) -> None:
        self.count = 0
        self.reference: torch.Tensor | None = None
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.gram = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, features: torch.Tensor) -> None:
        x = features.detach().to("cpu", torch.float64)
        if self.reference is None:
            self.reference = x.mean(dim=0)
        x = x - self.reference
        self.count += x.shape[0]
        self.total += x.sum(dim=0)
        self.gram += x.T @ x

    def centred_gram(self) -> torch.Tensor:
        if self.count == 0:
            raise ValueError("no features were accumulated")
        mean = self.total / self.count
        return self.gram - self.count * torch.outer(mean, mean)

    def singular_values(self) -> np.ndarray:
        """Descending singular values of the centred feature matrix (float64); NonFiniteFeatures
        when the features were not all finite (the eigensolver would fail without saying why)."""
        gram = self.centred_gram()
        if not torch.isfinite(gram).all():
            raise NonFiniteFeatures(f"the {self.count} features hold NaN or infinite values")
        eigenvalues = torch.linalg.eigvalsh(gram).clamp_min(0)
        return eigenvalues.sqrt().flip(0).numpy()
