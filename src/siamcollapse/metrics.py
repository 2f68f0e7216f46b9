"""Label-free metrics of a representation's spectrum: how collapsed it is, without labels.

``s`` is the vector of singular values of the centred N x d representation matrix, sorted in
descending order; the eigenvalues of the feature covariance are lambda_k = s_k^2 / (N - 1).
Every spectrum metric below is invariant to the scale of ``s`` (so the 1 / (N - 1) does not
matter) and is a pure function of it:

- ``auc`` (Li, Efros & Pathak 2022, Eq. 2): the mean cumulative explained variance of the
  singular values themselves (not their squares)::

      ev_k = (s_1 + ... + s_k) / (s_1 + ... + s_d),    AUC = (ev_1 + ... + ev_d) / d

  A flat spectrum gives (d + 1) / (2 d) (about 0.5), a rank-one one 1.0. Lower = less collapse.
- ``rankme`` (Garrido et al. 2023, "RankMe"): p_k = s_k / sum(s) + eps,
  RankMe = exp(-sum_k p_k log p_k), from 1 (rank one) to d (flat). Higher = less collapse.
- ``effective_rank`` (Roy & Vetterli 2007): the same entropy without eps, so
  RankMe(s, eps=0) == effective_rank(s); the eps only keeps log finite for exact zeros and
  changes the value by a small relative amount (under 0.04 % on the authors' six ImageNet
  spectra, d = 512).
- ``alpha_req`` (Agrawal et al. 2022, "alpha-ReQ"): alpha = minus the slope of the ordinary
  least-squares line through (log k, log lambda_k), lambda_k = s_k^2, for 1-based k from
  k_min to k_max inclusive (clipped to d). Larger = faster decay = more collapse; Agrawal et
  al. find probe accuracy peaks near alpha = 1, so the ordering holds above that.
- ``nesum`` (He & Ozay 2022, "NESum"): sum_k lambda_k / lambda_1, from 1 to d. Higher = less
  collapse.

``lidar`` (Thilak et al. 2024, "LiDAR") needs augmented views of each image instead of a
spectrum: the effective rank of the between-image covariance whitened by the within-image one,
so only directions that separate images more than augmentations do count (see its doc).
"""

from __future__ import annotations

import numpy as np

# The spectrum metrics every run reports and the training loop tracks, in table order.
SPECTRUM_METRICS = ("auc", "rankme", "alpha_req", "nesum")
LIDAR = "lidar"
# Eigenvalues below this fraction of the largest are float64 round-off of an exact zero: alpha-ReQ
# skips them (their logarithm would decide the slope).
ROUND_OFF = 1e-12


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


def _entropy_rank(weights: np.ndarray, eps: float = 0.0) -> float:
    """exp of the Shannon entropy of ``weights / sum(weights) + eps`` (0 log 0 = 0)."""
    p = weights / weights.sum() + eps
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


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
    """exp of the entropy of the normalised singular values (Roy & Vetterli 2007): RankMe, eps = 0."""
    return _entropy_rank(_as_spectrum(singular_values))


def rankme(singular_values, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023): exp(-sum p_k log p_k), p_k = s_k / sum(s) + eps; in [1, d]."""
    return _entropy_rank(_as_spectrum(singular_values), eps)


def alpha_req(singular_values, k_min: int = 5, k_max: int = 100) -> float:
    """alpha-ReQ (Agrawal et al. 2022): minus the OLS slope of log lambda_k on log k, k_min <= k <= k_max.

    k is 1-based and k_max is clipped to d; eigenvalues that are round-off of zero (below
    ``ROUND_OFF`` of the largest) are left out, since log 0 has no slope. Raises ValueError when
    fewer than two eigenvalues remain in the range.
    """
    if k_min < 1 or k_max < k_min:
        raise ValueError(f"alpha_req needs 1 <= k_min <= k_max, got k_min={k_min}, k_max={k_max}")
    eigenvalues = _as_spectrum(singular_values) ** 2
    k = np.arange(1, eigenvalues.size + 1)
    chosen = (k >= k_min) & (k <= k_max) & (eigenvalues > ROUND_OFF * eigenvalues[0])
    if chosen.sum() < 2:
        raise ValueError(f"alpha_req needs two non-zero eigenvalues with index in [{k_min}, {k_max}]; "
                         f"the spectrum has {int((eigenvalues > ROUND_OFF * eigenvalues[0]).sum())} of {k.size}")
    slope = np.polyfit(np.log(k[chosen]), np.log(eigenvalues[chosen]), 1)[0]
    return float(-slope)


def nesum(singular_values) -> float:
    """NESum (He & Ozay 2022): the eigenvalues' sum over the largest one, sum lambda_k / lambda_1, in [1, d]."""
    eigenvalues = _as_spectrum(singular_values) ** 2
    return float(eigenvalues.sum() / eigenvalues[0])


def spectrum_metrics(singular_values) -> dict[str, float]:
    """Every metric of ``SPECTRUM_METRICS`` (defaults), by name, for one spectrum.

    ``alpha_req`` is NaN where the spectrum has fewer than two non-zero eigenvalues in its
    range (a spectrum of at most five dimensions, or a collapse that severe): a missing
    value in the tables, never a silently wrong one.
    """
    s = _as_spectrum(singular_values)
    try:
        alpha = alpha_req(s)
    except ValueError:
        alpha = float("nan")
    return {"auc": auc(s), "rankme": rankme(s), "alpha_req": alpha, "nesum": nesum(s)}


def spectrum_summary(singular_values) -> dict[str, float]:
    """The numbers a run reports about one spectrum: ``SPECTRUM_METRICS``, effective rank, size, scale."""
    s = _as_spectrum(singular_values)
    return {**spectrum_metrics(s), "effective_rank": effective_rank(s), "dims": int(s.size),
            "top_singular_value": float(s[0])}


def lidar(views, delta: float = 1e-4, eps: float = 1e-7) -> float:
    """LiDAR (Thilak et al. 2024) of embeddings ``views`` of shape (n images, q views, d).

    With per-image means mu_i and their mean mu::

        Sigma_b = 1/(n-1)     sum_i (mu_i - mu)(mu_i - mu)^T                 between images
        Sigma_w = 1/(n(q-1))  sum_ij (x_ij - mu_i)(x_ij - mu_i)^T + delta' I  within an image
        LiDAR   = exp(entropy of p_k = l_k / sum(l) + eps),  l = eig(Sigma_w^-1/2 Sigma_b Sigma_w^-1/2)

    where delta' = ``delta`` * trace(Sigma_w) / d keeps the whitening finite along directions no
    augmentation moves. Like RankMe it lies in [1, d]; higher = more directions that tell images
    apart beyond what augmentation changes. Computed in float64.
    """
    x = np.asarray(views, dtype=np.float64)
    if x.ndim != 3 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"lidar needs views of shape (n >= 2 images, q >= 2 views, d), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("the embeddings hold non-finite values")
    n, q, d = x.shape
    image_means = x.mean(axis=1)
    between = np.cov(image_means, rowvar=False).reshape(d, d)
    spread = (x - image_means[:, None, :]).reshape(n * q, d)
    within = spread.T @ spread / (n * (q - 1))
    within += delta * np.trace(within) / d * np.eye(d) if np.trace(within) > 0 else delta * np.eye(d)
    w_eigenvalues, w_vectors = np.linalg.eigh(within)
    inv_sqrt = (w_vectors / np.sqrt(w_eigenvalues)) @ w_vectors.T
    eigenvalues = np.linalg.eigvalsh(inv_sqrt @ between @ inv_sqrt).clip(min=0)
    if eigenvalues.sum() <= ROUND_OFF * d:  # whitened, the within-image spread has trace about d
        raise ValueError("the per-image mean embeddings do not vary: every image looks the same")
    return _entropy_rank(eigenvalues, eps)
