"""Forecasting accuracy by the label-free metrics (siamcollapse.reporting.forecast): the rank
statistics against hand-worked cases, the cluster bootstrap, the verdicts and the written files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siamcollapse.reporting import forecast
from siamcollapse.reporting.forecast import (
    FORECAST_COLUMNS,
    FORECASTS,
    POOLED,
    REVERSED,
    UNDETERMINED,
    bootstrap_weights,
    correlate,
    kendall_tau_b,
    spearman,
)
from siamcollapse.reporting.tables import LABEL_FREE_METRICS, build_run_table
from tests.helpers import collapse_runs

# --------------------------------------------------------------------------- rank statistics


@pytest.mark.parametrize(("x", "y", "rho", "tau"), [
    ([1, 2, 3, 4], [10, 20, 30, 40], 1.0, 1.0),  # perfect
    ([1, 2, 3, 4], [40, 30, 20, 10], -1.0, -1.0),  # perfectly reversed
    # one discordant pair of six: rho = 1 - 6 * 2 / (4 * 15), tau = (5 - 1) / 6
    ([1, 2, 3, 4], [1, 3, 2, 4], 0.8, 4 / 6),
    # a tie in x: ranks (1, 2.5, 2.5, 4) against (1, 3, 2, 4): rho = 4.5 / sqrt(4.5 * 5);
    # 5 concordant pairs, the tied one in neither: tau-b = 5 / sqrt(5 * 6)
    ([1, 2, 2, 3], [1, 3, 2, 4], math.sqrt(0.9), 5 / math.sqrt(30)),
    # ties in both, tied on the same pair: perfectly ordered otherwise
    ([1, 1, 2, 3], [5, 5, 6, 7], 1.0, 1.0),
])
def test_spearman_and_kendall_on_hand_worked_cases(x, y, rho, tau) -> None:
    assert spearman(x, y) == pytest.approx(rho)
    assert kendall_tau_b(x, y) == pytest.approx(tau)
    assert spearman(y, x) == pytest.approx(rho) and kendall_tau_b(y, x) == pytest.approx(tau)  # symmetric


def test_a_constant_variable_has_no_correlation() -> None:
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4])) and math.isnan(kendall_tau_b([2, 2, 2], [1, 2, 3]))


def test_weights_count_a_run_as_often_as_it_was_drawn() -> None:
    """A resample's weights give the statistics of the sample with each run repeated that often."""
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 4, 7).astype(float), rng.normal(size=7)
    weights = np.array([[2, 0, 1, 1, 3, 0, 1], [1, 1, 1, 1, 1, 1, 1]], dtype=float)
    rhos, taus = forecast.weighted_spearman(x, y, weights), forecast.weighted_kendall(x, y, weights)
    for row, rho, tau in zip(weights.astype(int), rhos, taus):
        repeated_x, repeated_y = np.repeat(x, row), np.repeat(y, row)
        assert rho == pytest.approx(spearman(repeated_x, repeated_y))
        assert tau == pytest.approx(kendall_tau_b(repeated_x, repeated_y))


# --------------------------------------------------------------------------- bootstrap


def test_the_cluster_bootstrap_draws_the_seeds_of_a_setting_together() -> None:
    clusters = ["a", "a", "a", "b", "b", "c"]
    weights = bootstrap_weights(clusters, 500, np.random.default_rng(0))
    assert weights.shape == (500, 6)
    assert (weights[:, 0] == weights[:, 1]).all() and (weights[:, 1] == weights[:, 2]).all()
    assert (weights[:, 3] == weights[:, 4]).all()
    assert (weights[:, [0, 3, 5]].sum(axis=1) == 3).all()  # three clusters drawn each time
    assert len({tuple(row) for row in weights}) > 5  # and they vary
    runs = bootstrap_weights(range(6), 500, np.random.default_rng(0))
    assert (runs.sum(axis=1) == 6).all() and (runs[:, 0] != runs[:, 1]).any()  # runs drawn one by one


def _clustered_sample() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Four settings whose means barely agree, each of five seeds that agree perfectly within."""
    centres = [(1.0, 2.0), (2.0, 1.0), (3.0, 4.0), (4.0, 3.0)]
    x, y, settings = [], [], []
    for i, (cx, cy) in enumerate(centres):
        for seed in range(5):
            x.append(cx + 0.01 * seed)
            y.append(cy + 0.01 * seed)
            settings.append(f"setting-{i}")
    return np.array(x), np.array(y), settings


def test_the_interval_accounts_for_seeds_not_being_independent_runs() -> None:
    x, y, settings = _clustered_sample()
    clustered = correlate(x, y, settings, expected_sign=+1)
    as_runs = correlate(x, y, [f"run-{i}" for i in range(len(x))], expected_sign=+1)
    assert clustered["spearman"] == as_runs["spearman"]  # the same estimate
    assert clustered["resampled"] == "settings" and as_runs["resampled"] == "runs"
    assert clustered["n_settings"] == 4 and as_runs["n_settings"] == 20  # every run its own setting
    width = clustered["spearman_high"] - clustered["spearman_low"]
    assert width > 2 * (as_runs["spearman_high"] - as_runs["spearman_low"])
    assert as_runs["verdict"] == FORECASTS and clustered["verdict"] == UNDETERMINED  # 20 runs overclaim


def test_a_single_setting_resamples_its_runs() -> None:
    cell = correlate([1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0], ["only"] * 4, expected_sign=-1)
    assert cell["resampled"] == "runs" and cell["n_settings"] == 1 and cell["n_resamples"] > 1000
    assert cell["spearman_low"] < cell["spearman"] < cell["spearman_high"]


def test_resamples_with_a_constant_variable_are_dropped_and_too_few_give_no_interval() -> None:
    # three runs: a resample draws the same run three times with probability 3/27
    cell = correlate([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], ["a", "b", "c"], expected_sign=+1)
    assert 0.8 * forecast.N_RESAMPLES < cell["n_resamples"] < forecast.N_RESAMPLES
    assert cell["spearman_low"] == cell["spearman_high"] == 1.0
    # ... a degenerate interval of three units, which no verdict may rest on
    assert cell["verdict"] == UNDETERMINED
    low, high = forecast.percentile_interval(np.array([0.1, 0.2, np.nan, np.nan, np.nan]), 5)
    assert math.isnan(low) and math.isnan(high)
    assert forecast.percentile_interval(np.array([0.1, 0.2, 0.3, np.nan]), 4) == pytest.approx((0.105, 0.295))


def test_the_bootstrap_is_reproducible() -> None:
    rng = np.random.default_rng(5)
    x, y, settings = rng.normal(size=30), rng.normal(size=30), [f"s{i // 3}" for i in range(30)]
    once = correlate(x, y, settings, +1)
    assert once == correlate(x, y, settings, +1)
    other = correlate(x, y, settings, +1, seed=1)
    assert other["spearman"] == once["spearman"] and other["spearman_low"] != once["spearman_low"]


# --------------------------------------------------------------------------- verdicts and NaN


@pytest.mark.parametrize(("low", "high", "sign", "n", "expected"), [
    (-0.9, -0.2, -1, 10, FORECASTS),
    (0.2, 0.9, +1, 10, FORECASTS),
    (0.2, 0.9, -1, 10, REVERSED),
    (-0.9, -0.2, +1, 10, REVERSED),
    (-0.5, 0.4, -1, 10, UNDETERMINED),
    (0.0, 0.4, +1, 10, UNDETERMINED),  # touches 0: not excluded
    (0.2, 0.9, +1, 3, UNDETERMINED),  # too few resampled units
    (0.2, 0.9, +1, 4, FORECASTS),
    (math.nan, math.nan, +1, 10, UNDETERMINED),
])
def test_verdict(low, high, sign, n, expected) -> None:
    assert forecast.verdict(low, high, sign, n) == expected


def test_a_run_without_a_value_is_left_out() -> None:
    x, y = [0.9, 0.8, np.nan, 0.7, 0.6], [10.0, 20.0, 99.0, 30.0, 35.0]
    cell = correlate(x, y, ["a", "b", "c", "d", "e"], expected_sign=-1)
    kept = correlate([0.9, 0.8, 0.7, 0.6], [10.0, 20.0, 30.0, 35.0], ["a", "b", "d", "e"], expected_sign=-1)
    assert cell["n_runs"] == 4 and cell["n_settings"] == 4
    assert cell == kept
    few = correlate([0.9, np.nan, 0.7], [1.0, 2.0, 3.0], ["a", "b", "c"], expected_sign=-1)
    assert few["n_runs"] == 2 and math.isnan(few["spearman"]) and few["verdict"] == UNDETERMINED


# --------------------------------------------------------------------------- the table


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return build_run_table(collapse_runs.experiment_records())


@pytest.fixture(scope="module")
def frame(table: pd.DataFrame) -> pd.DataFrame:
    return forecast.forecast_table(table)


def _cell(frame: pd.DataFrame, metric: str, group: str = POOLED, probe: str = "linear_top1") -> pd.Series:
    rows = frame[(frame["metric"] == metric) & (frame["group"] == group) & (frame["probe"] == probe)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_one_row_per_probe_group_and_metric_over_the_trained_runs(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == FORECAST_COLUMNS
    groups = [POOLED, "byol", "mocov3", "simsiam"]
    assert len(frame) == len(forecast.PROBES) * len(groups) * len(LABEL_FREE_METRICS)
    assert set(frame["group"]) == set(groups) and set(frame["arch"]) == {collapse_runs.ARCH}
    trained = len(collapse_runs.trained_top1())
    assert _cell(frame, "auc")["n_runs"] == trained  # floors excluded
    assert _cell(frame, "auc")["n_settings"] == len(collapse_runs.SETTINGS)
    assert _cell(frame, "lidar")["n_runs"] == trained - 1  # the run without LiDAR
    assert _cell(frame, "auc", "simsiam")["n_runs"] == 9 and _cell(frame, "auc", "simsiam")["n_settings"] == 3
    assert _cell(frame, "auc", "mocov3")["resampled"] == "runs"  # one setting
    for metric, info in LABEL_FREE_METRICS.items():
        assert (frame.loc[frame["metric"] == metric, "expected_sign"] == info.less_collapse).all()


def test_the_verdicts_follow_the_relation_of_each_metric_to_accuracy(frame: pd.DataFrame) -> None:
    auc, rankme, alpha, nesum = (_cell(frame, m) for m in ("auc", "rankme", "alpha_req", "nesum"))
    assert auc["spearman"] == pytest.approx(-1.0) and auc["kendall"] == pytest.approx(-1.0)
    assert auc["verdict"] == FORECASTS and rankme["verdict"] == FORECASTS
    assert rankme["spearman"] == pytest.approx(1.0)
    assert alpha["spearman"] == pytest.approx(1.0) and alpha["verdict"] == REVERSED  # expected negative
    assert math.isnan(nesum["spearman"]) and nesum["n_resamples"] == 0 and nesum["verdict"] == UNDETERMINED
    assert _cell(frame, "auc", probe="knn_top1")["verdict"] == FORECASTS


def test_a_cell_computed_alone_is_the_tables(table: pd.DataFrame, frame: pd.DataFrame) -> None:
    alone = forecast.forecast_table(table, probes=["linear_top1"], groups=[POOLED])
    assert set(alone["group"]) == {POOLED} and set(alone["probe"]) == {"linear_top1"}
    full = frame[(frame["group"] == POOLED) & (frame["probe"] == "linear_top1")].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, full)


def test_an_older_table_without_the_new_metrics_has_empty_rows() -> None:
    records = [{k: v for k, v in r.items() if k not in ("rankme", "alpha_req", "nesum", "lidar")}
               for r in collapse_runs.experiment_records()]
    frame = forecast.forecast_table(build_run_table(records))
    assert (_cell(frame, "rankme")["n_runs"], _cell(frame, "rankme")["verdict"]) == (0, UNDETERMINED)
    assert _cell(frame, "auc")["verdict"] == FORECASTS


# --------------------------------------------------------------------------- the files


def test_forecast_files_state_how_and_what(table: pd.DataFrame, frame: pd.DataFrame, tmp_path: Path) -> None:
    paths = forecast.write_forecast(table, tmp_path)
    assert [p.name for p in paths] == ["forecast.csv", "forecast.md"]
    written = pd.read_csv(paths[0])
    pd.testing.assert_frame_equal(written, frame, check_dtype=False)
    text = paths[1].read_text()
    assert text.startswith("# ") and "cluster bootstrap" in text and f"{forecast.N_RESAMPLES} resamples" in text
    assert "constant are dropped" in text and "excludes 0 on the expected side" in text
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == [f"## {collapse_runs.ARCH} · linear top-1", f"## {collapse_runs.ARCH} · kNN top-1"]
    assert "| AUC | pooled | − | 15 | 5 | −1.00 [−1.00, −1.00] |" in text
    summary = text.splitlines()[-1]
    assert summary.startswith("**Summary**") and "forecast by AUC, RankMe, LiDAR;" in summary
    assert "α-ReQ (reversed)" in summary and "NESum (undetermined)" in summary


def test_the_summary_follows_the_data(table: pd.DataFrame) -> None:
    flipped = table.assign(auc=-table["auc"], rankme=-table["rankme"])
    summary = forecast.summary_line(forecast.forecast_table(flipped, probes=["linear_top1"], groups=[POOLED]))
    assert "forecast by LiDAR;" in summary and "AUC (reversed)" in summary and "RankMe (reversed)" in summary


def test_fewer_than_three_trained_runs_still_write_both_files(tmp_path: Path) -> None:
    records = [r for r in collapse_runs.experiment_records() if r["run"] in ("ss-iid-100-s0", "moco-100-s0",
                                                                           "random-init-s0", "raw-pixels")]
    paths = forecast.write_forecast(build_run_table(records), tmp_path)
    assert all(p.exists() for p in paths)
    written = pd.read_csv(paths[0])
    assert list(written.columns) == FORECAST_COLUMNS and written.empty
    text = paths[1].read_text()
    assert "Only 2 trained runs" in text and "|" not in text and "fewer than 3 trained runs" in text
