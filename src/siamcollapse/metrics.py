"""Spectrum metrics of representations: the paper's collapse AUC (Li, Efros, Pathak 2022, Eq. 2).

The spectrum is the vector of singular values of the centred N x d representation matrix,
sorted in descending order. The paper's metric is the mean of the cumulative explained
variance of the singular values themselves (not their squares)::

    ev_k = (s_1 + ... + s_k) / (s_1 + ... + s_d),    AUC = (ev_1 + ... + ev_d) / d

A flat spectrum (no collapse) gives (d + 1) / (2 d), which tends to 0.5; a rank-one
representation gives 1.0. Lower AUC means less collapse.
"""

from __future__ import annotations

import numpy as np


def _as_spectrum(singular_values) -> np.ndarray:
    s = np.asarray(singular_values, dtype=np.float64).reshape(-1)
    if s.size == 0:
        raise ValueError("the spectrum is empty")
    if not np.all(np.isfinite(s)):
        raise ValueError("the spectrum holds non-finite values")
    if np.any(s < 0):
        raise ValueError("singular values must be non-negative")
    if s.sum() == 0:
        raise ValueError("the spectrum is all zeros (a constant representation)")
    return np.sort(s)[::-1]


def cumulative_explained_variance(singular_values) -> np.ndarray:
    """ev_k for k = 1..d, as in the paper (fractions of the sum of singular values)."""
    s = _as_spectrum(singular_values)
    return np.cumsum(s) / s.sum()


def auc(singular_values) -> float:
    """The paper's collapse metric: mean cumulative explained variance (Eq. 2), in (0.5, 1]."""
    return float(cumulative_explained_variance(singular_values).mean())


def normalized_spectrum(singular_values) -> np.ndarray:
    """sigma_i / sigma_1, the shape of the spectrum independent of its scale."""
    s = _as_spectrum(singular_values)
    return s / s[0]


def effective_rank(singular_values) -> float:
    """exp of the entropy of the normalised singular values (Roy & Vetterli 2007)."""
    s = _as_spectrum(singular_values)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def spectrum_summary(singular_values) -> dict[str, float]:
    """The numbers a run reports about its spectrum."""
    s = _as_spectrum(singular_values)
    return {
        "auc": auc(s),
        "effective_rank": effective_rank(s),
        "dims": int(s.size),
        "top_singular_value": float(s[0]),
    }
