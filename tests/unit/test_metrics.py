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
