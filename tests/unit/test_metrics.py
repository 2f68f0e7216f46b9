"""The paper's collapse metric (Eq. 2) on real ImageNet spectra and on matrices of known rank."""

import numpy as np
import pytest

from siamcollapse import metrics
from tests.helpers.reference_spectra import PERCENTS, reference_spectrum


def test_auc_matches_the_formula_written_out_on_real_spectra():
    for percent in PERCENTS:
        s = reference_spectrum(percent)
        assert s.shape == (512,)
        by_hand = np.mean([s[: k + 1].sum() / s.sum() for k in range(len(s))])
        assert metrics.auc(s) == pytest.approx(by_hand, abs=1e-12)


def test_one_percent_model_is_least_collapsed_of_the_reference_spectra():
    aucs = {p: metrics.auc(reference_spectrum(p)) for p in PERCENTS}
    assert min(aucs, key=aucs.get) == 1
    assert aucs[1] < aucs[100]
    assert all(0.5 < a < 1.0 for a in aucs.values())


def test_flat_spectrum_gives_half_plus_one_over_2d_and_rank_one_gives_one():
    d = 64
    assert metrics.auc(np.ones(d)) == pytest.approx((d + 1) / (2 * d))
    assert metrics.auc(np.r_[5.0, np.zeros(d - 1)]) == pytest.approx(1.0)


@pytest.mark.parametrize("rank", [1, 4, 16])
def test_auc_of_a_matrix_of_known_rank(rank):
    rng = np.random.default_rng(rank)
    d = 32
    # Orthonormal factors with equal singular values on `rank` directions: the spectrum is
    # `rank` equal values then zeros, so ev_k = min(k, rank) / rank.
    u, _ = np.linalg.qr(rng.normal(size=(500, rank)))
    v, _ = np.linalg.qr(rng.normal(size=(d, rank)))
    x = u @ v.T * 3.0
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    expected = np.mean([min(k, rank) / rank for k in range(1, d + 1)])
    assert metrics.auc(s) == pytest.approx(expected, abs=2e-3)


def test_auc_is_independent_of_scale_and_order():
    s = reference_spectrum(10)
    assert metrics.auc(s * 1e-3) == pytest.approx(metrics.auc(s))
    assert metrics.auc(s[::-1]) == pytest.approx(metrics.auc(s))


@pytest.mark.parametrize("bad", [[], [1.0, np.nan], [1.0, -1.0], [0.0, 0.0]])
def test_invalid_spectra_are_rejected(bad):
    with pytest.raises(ValueError):
        metrics.auc(bad)


def test_summary_reports_auc_and_effective_rank():
    summary = metrics.spectrum_summary(np.ones(10))
    assert summary["auc"] == pytest.approx(0.55)
    assert summary["effective_rank"] == pytest.approx(10.0)
    assert summary["dims"] == 10


# --- the label-free metrics besides the AUC --------------------------------------------------------


def test_rankme_is_the_effective_rank_up_to_its_eps():
    for percent in PERCENTS:
        s = reference_spectrum(percent)
        assert metrics.rankme(s, eps=0.0) == pytest.approx(metrics.effective_rank(s), rel=1e-12)
        # the eps moves it by a relative amount under 0.04 % (the module doc's figure)
        assert 0 < metrics.rankme(s) / metrics.effective_rank(s) - 1 < 4e-4


@pytest.mark.parametrize("rank", [1, 3, 10])
def test_rankme_and_nesum_count_equal_directions(rank):
    s = np.r_[np.full(rank, 2.0), np.zeros(20 - rank)]
    assert metrics.rankme(s, eps=0.0) == pytest.approx(rank)
    assert metrics.nesum(s) == pytest.approx(rank)


def test_nesum_is_the_eigenvalue_sum_over_the_largest():
    assert metrics.nesum([2.0, 1.0, 1.0]) == pytest.approx((4 + 1 + 1) / 4)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.5])
def test_alpha_req_recovers_the_exponent_of_a_power_law(alpha):
    k = np.arange(1, 301)
    s = k ** (-alpha / 2)  # eigenvalues lambda_k = s_k^2 = k^-alpha
    assert metrics.alpha_req(s) == pytest.approx(alpha, abs=1e-10)
    # only k in [k_min, k_max] counts: a different head or tail leaves it unchanged
    bent = s.copy()
    bent[:4], bent[150:] = bent[:4] * 10, bent[150:] * 0.01
    assert metrics.alpha_req(bent) == pytest.approx(alpha, abs=1e-10)


def test_alpha_req_clips_k_max_to_d_and_needs_two_eigenvalues():
    s = np.arange(1, 21, dtype=float)[::-1]
    k = np.arange(5, 21)
    expected = -np.polyfit(np.log(k), np.log(s[k - 1] ** 2), 1)[0]
    assert metrics.alpha_req(s) == pytest.approx(expected)
    with pytest.raises(ValueError, match="two non-zero eigenvalues"):
        metrics.alpha_req(np.r_[np.ones(5), np.zeros(10)])  # only k = 5 is non-zero in range
    with pytest.raises(ValueError, match="k_min"):
        metrics.alpha_req(s, k_min=10, k_max=5)
    assert np.isnan(metrics.spectrum_metrics(np.ones(4))["alpha_req"])  # missing, never wrong


def test_every_metric_agrees_the_one_percent_reference_is_least_collapsed():
    values = {p: metrics.spectrum_metrics(reference_spectrum(p)) for p in PERCENTS}
    for name, larger_is_less_collapsed in [("auc", False), ("rankme", True), ("alpha_req", False), ("nesum", True)]:
        by_metric = {p: v[name] for p, v in values.items()}
        best = max(by_metric, key=by_metric.get) if larger_is_less_collapsed else min(by_metric, key=by_metric.get)
        assert best == 1, name
    # RankMe sorts the six exactly against the AUC (both are entropies/areas of the same s_k / sum s)
    assert sorted(PERCENTS, key=lambda p: values[p]["auc"]) == sorted(PERCENTS, key=lambda p: -values[p]["rankme"])


def _decaying_representation(informative: float, rng, n=400, views=4, d=64):
    """Per-image embeddings whose variance along the k-th direction falls as exp(-k / informative),
    seen through ``views`` augmentations that add isotropic noise: a collapse of known degree."""
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scale = np.exp(-np.arange(d) / (2 * informative))
    images = rng.normal(size=(n, 1, d)) * scale @ basis.T
    return images[:, 0], images + 0.05 * rng.normal(size=(n, views, d))


def test_every_metric_moves_the_right_way_as_the_informative_dimensions_fall():
    rng = np.random.default_rng(0)
    rows = []
    for informative in [32, 16, 8, 4, 2, 1]:
        features, views = _decaying_representation(informative, rng)
        s = np.linalg.svd(features - features.mean(0), compute_uv=False)
        rows.append({**metrics.spectrum_metrics(s), "lidar": metrics.lidar(views)})
    for name, falls in [("auc", False), ("rankme", True), ("alpha_req", False), ("nesum", True), ("lidar", True)]:
        series = [row[name] for row in rows]
        steps = np.diff(series)
        assert np.all(steps < 0) if falls else np.all(steps > 0), (name, series)


def test_lidar_counts_the_directions_that_tell_images_apart_beyond_augmentation():
    rng = np.random.default_rng(1)
    n, q, d, informative = 500, 8, 32, 5
    identity = np.zeros((n, 1, d))
    identity[:, 0, :informative] = rng.normal(size=(n, informative))
    # augmentation moves every direction, the uninformative ones as much as the informative ones
    views = identity + 0.1 * rng.normal(size=(n, q, d))
    assert metrics.lidar(views) == pytest.approx(informative, rel=0.1)
    # a view-independent rescaling of the embedding changes nothing (the within-image whitening)
    assert metrics.lidar(views * 7.0) == pytest.approx(metrics.lidar(views), rel=1e-6)


@pytest.mark.parametrize("shape", [(1, 4, 3), (5, 1, 3), (5, 4)])
def test_lidar_rejects_what_is_not_n_images_by_q_views(shape):
    with pytest.raises(ValueError, match="views of shape"):
        metrics.lidar(np.ones(shape))


def test_lidar_of_identical_images_is_an_error_not_a_number():
    views = np.random.default_rng(2).normal(size=(1, 4, 6)).repeat(10, axis=0)
    with pytest.raises(ValueError, match="every image looks the same"):
        metrics.lidar(views)
