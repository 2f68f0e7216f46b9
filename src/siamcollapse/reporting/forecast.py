"""Does a label-free collapse metric forecast accuracy? Rank correlations over runs, with intervals.

The paper's claim is that the AUC, computed without labels, tells which representation will
probe better. This module tests that claim, and the same for the other label-free metrics
(``tables.LABEL_FREE_METRICS``): for each architecture, metric and probe accuracy, across the
trained runs of that architecture (the floors are no point on any trend), it computes

- Spearman's rho: the Pearson correlation of the average ranks (ties share their mean rank);
- Kendall's tau-b: (concordant - discordant pairs) / sqrt(pairs untied in x * pairs untied in y);

pooled over every method and within each method, each with a bootstrap 95 % percentile interval.
Runs are not independent: the seeds of a setting share everything but their seed. The bootstrap
therefore resamples settings (a cluster bootstrap: a drawn setting brings all its seeds); a
group with a single setting resamples its runs. Resamples in which either variable is constant
have no correlation and are dropped. Every resample is a vector of integer weights on the runs
(how often each run was drawn), so that both statistics of all resamples are a few matrix
products, with the point estimate the case of unit weights. Each cell draws from its own
generator seeded with ``SEED``: a cell computed alone (the forecast figure's) equals the table's.

Both statistics are NumPy only: scipy is no dependency (and pandas' Kendall needs it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from siamcollapse import io
from siamcollapse.layout import TABLE_NAMES
from siamcollapse.reporting.tables import (
    LABEL_FREE_METRICS,
    MISSING,
    is_baseline,
    pipe_table,
    seed_groups,
    write_csv,
)

NAME = "forecast"  # forecast.csv and forecast.md
assert NAME in TABLE_NAMES
PROBES = {"linear_top1": "linear top-1", "knn_top1": "kNN top-1"}
POOLED = "pooled"  # the group of every trained run of an arch
N_RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95
MIN_RUNS = 3  # below this, no correlation is estimated
# Below this many resampling units (settings; the runs of a single-setting group) no verdict: a
# percentile bootstrap cannot tell chance from a trend there (a perfect order of 3 exchangeable
# units arises by chance with probability 1/6 or more, and every resample of it agrees: [1, 1]).
MIN_UNITS = 4
MIN_VALID = 0.5  # the share of resamples that must keep both variables varying, or the interval is NaN
FORECASTS, REVERSED, UNDETERMINED = "forecasts", "reversed", "undetermined"
BY_SETTINGS, BY_RUNS = "settings", "runs"
FORECAST_COLUMNS = [
    "arch", "probe", "metric", "group", "expected_sign", "n_runs", "n_settings", "resampled",
    "spearman", "spearman_low", "spearman_high", "kendall", "kendall_low", "kendall_high", "n_resamples", "verdict",
]


# --------------------------------------------------------------------------- rank statistics


def _as_weights(weights: np.ndarray | None, n: int) -> np.ndarray:
    """(resamples, n) weights; None: one resample of every run once (the sample itself)."""
    return np.ones((1, n)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=np.float64))


def _weighted_ranks(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) of every run in every resample, and which resamples are constant.

    A run drawn k times stands for k tied copies: its rank is the (weighted) count of smaller
    values plus half of the count of equal ones, plus 1/2.
    """
    distinct, codes = np.unique(values, return_inverse=True)
    counts = weights @ (codes[:, None] == np.arange(distinct.size)).astype(np.float64)  # (resamples, distinct)
    below = np.cumsum(counts, axis=1) - counts
    ranks = below[:, codes] + (counts[:, codes] + 1.0) / 2.0
    constant = counts.max(axis=1) == weights.sum(axis=1)  # exact: counts of integer weights
    return ranks, constant


def weighted_spearman(x: Iterable[float], y: Iterable[float], weights: np.ndarray | None = None) -> np.ndarray:
    """Spearman's rho of (x, y) with each run counted ``weights[b, i]`` times, per resample b.

    NaN where either variable is constant in a resample. ``weights=None``: the sample itself.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = _as_weights(weights, x.size)
    rx, constant_x = _weighted_ranks(x, w)
    ry, constant_y = _weighted_ranks(y, w)
    total = w.sum(axis=1, keepdims=True)
    dx = rx - (w * rx).sum(axis=1, keepdims=True) / total
    dy = ry - (w * ry).sum(axis=1, keepdims=True) / total
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (w * dx * dy).sum(axis=1) / np.sqrt((w * dx * dx).sum(axis=1) * (w * dy * dy).sum(axis=1))
    return np.where(constant_x | constant_y, np.nan, np.clip(rho, -1.0, 1.0))


def weighted_kendall(x: Iterable[float], y: Iterable[float], weights: np.ndarray | None = None) -> np.ndarray:
    """Kendall's tau-b of (x, y) with each run counted ``weights[b, i]`` times, per resample b.

    Over the pairs of copies: sum sign(dx) sign(dy) / sqrt(pairs untied in x * pairs untied in y);
    two copies of one run are tied in both and count in neither. NaN where either is constant.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = _as_weights(weights, x.size)
    sx, sy = np.sign(x[:, None] - x[None, :]), np.sign(y[:, None] - y[None, :])

    def pairs(signs: np.ndarray) -> np.ndarray:
        return ((w @ signs) * w).sum(axis=1)

    untied_x, untied_y = pairs(sx * sx), pairs(sy * sy)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = pairs(sx * sy) / np.sqrt(untied_x * untied_y)
    return np.where((untied_x == 0) | (untied_y == 0), np.nan, np.clip(tau, -1.0, 1.0))


def spearman(x: Iterable[float], y: Iterable[float]) -> float:
    """Spearman's rho of a sample (average ranks for ties); NaN for a constant variable."""
    return float(weighted_spearman(x, y)[0])


def kendall_tau_b(x: Iterable[float], y: Iterable[float]) -> float:
    """Kendall's tau-b of a sample (ties in either variable handled); NaN for a constant variable."""
    return float(weighted_kendall(x, y)[0])


# --------------------------------------------------------------------------- bootstrap


def bootstrap_weights(clusters: Sequence[Hashable], n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, runs) weights of a cluster bootstrap: draw as many clusters as there are, with
    replacement; each run weighs as often as its cluster was drawn (so a cluster's runs go together).
    Clusters that are all different resample the runs themselves."""
    _, codes = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    n_clusters = int(codes.max()) + 1 if codes.size else 0
    draws = rng.integers(0, n_clusters, size=(n_resamples, n_clusters))
    offsets = (np.arange(n_resamples) * n_clusters)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_clusters)
    return counts.reshape(n_resamples, n_clusters)[:, codes].astype(np.float64)


def percentile_interval(values: np.ndarray, n_resamples: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of the finite ``values`` of ``n_resamples``; NaN where fewer than
    ``MIN_VALID`` of them are finite (the dropped resamples would decide the interval)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.size < MIN_VALID * n_resamples:
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def verdict(low: float, high: float, expected_sign: int, n_units: int) -> str:
    """'forecasts' where the interval excludes 0 on the expected side, 'reversed' on the other,
    'undetermined' otherwise (an interval containing 0 or missing, or fewer than ``MIN_UNITS``
    resampling units)."""
    if n_units < MIN_UNITS or math.isnan(low) or math.isnan(high) or low <= 0 <= high:
        return UNDETERMINED
    return FORECASTS if (1 if low > 0 else -1) == expected_sign else REVERSED


def correlate(
    x: Iterable[float],
    y: Iterable[float],
    settings: Sequence[Hashable],
    expected_sign: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """One cell of the forecast: both statistics, their intervals and the verdict of ρ.

    Runs where x or y is NaN are left out (``n_runs`` shows it); ``settings`` is each run's
    setting (its seed group), the unit the bootstrap resamples.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, settings = x[keep], y[keep], [s for s, k in zip(settings, keep) if k]
    n_settings = len(set(map(str, settings)))
    cell: dict[str, Any] = {
        "expected_sign": expected_sign, "n_runs": int(x.size), "n_settings": n_settings,
        "resampled": BY_SETTINGS if 1 < n_settings < x.size else BY_RUNS, "n_resamples": 0,
        **dict.fromkeys(["spearman", "spearman_low", "spearman_high", "kendall", "kendall_low", "kendall_high"],
                        math.nan),
    }
    if x.size >= MIN_RUNS:
        units = settings if n_settings > 1 else range(x.size)
        weights = bootstrap_weights(list(units), n_resamples, np.random.default_rng(seed))
        rhos, taus = weighted_spearman(x, y, weights), weighted_kendall(x, y, weights)
        cell.update(spearman=spearman(x, y), kendall=kendall_tau_b(x, y), n_resamples=int(np.isfinite(rhos).sum()))
        cell["spearman_low"], cell["spearman_high"] = percentile_interval(rhos, n_resamples)
        cell["kendall_low"], cell["kendall_high"] = percentile_interval(taus, n_resamples)
    units = n_settings if cell["resampled"] == BY_SETTINGS else int(x.size)
    cell["verdict"] = verdict(cell["spearman_low"], cell["spearman_high"], expected_sign, units)
    return cell


# --------------------------------------------------------------------------- the table


def _column(rows: pd.DataFrame, column: str) -> np.ndarray:
    """A numeric column, all NaN where the table lacks it (an older run table)."""
    if column not in rows.columns:
        return np.full(len(rows), np.nan)
    return pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)


def trained_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The runs a forecast is about: every trained run (the floors are no point on any trend)."""
    return table[~is_baseline(table)]


def forecast_table(
    table: pd.DataFrame,
    probes: Iterable[str] = tuple(PROBES),
    metrics: Iterable[str] = tuple(LABEL_FREE_METRICS),
    groups: Iterable[str] | None = None,
) -> pd.DataFrame:
    """``FORECAST_COLUMNS``: one row per arch, probe, group (pooled, then each method) and metric.

    Empty (the columns only) below ``MIN_RUNS`` trained runs. ``groups`` restricts the groups
    (e.g. ``[POOLED]``); every cell is the one the full table has.
    """
    trained = trained_runs(table)
    if len(trained) < MIN_RUNS:
        return pd.DataFrame(columns=FORECAST_COLUMNS)
    settings = seed_groups(trained)
    wanted = None if groups is None else set(groups)
    rows = []
    for arch in sorted(trained["arch"].astype(str).unique()):
        of_arch = trained["arch"].astype(str) == arch
        members = {POOLED: of_arch}
        members |= {m: of_arch & (trained["method"] == m) for m in sorted(trained.loc[of_arch, "method"].unique())}
        for probe in probes:
            for group, mask in members.items():
                if wanted is not None and group not in wanted:
                    continue
                runs = trained[mask]
                for metric in metrics:
                    cell = correlate(_column(runs, metric), _column(runs, probe), settings[mask].tolist(),
                                     LABEL_FREE_METRICS[metric].less_collapse)
                    rows.append({"arch": arch, "probe": probe, "metric": metric, "group": group, **cell})
    return pd.DataFrame.from_records(rows, columns=FORECAST_COLUMNS)


# --------------------------------------------------------------------------- Markdown


def _signed(value: Any) -> str:
    return MISSING if value is None or pd.isna(value) else f"{float(value):+.2f}".replace("-", "−")


def format_estimate(value: Any, low: Any, high: Any) -> str:
    """'−0.62 [−0.91, −0.20]'; the interval '[—]' where it is missing; '—' for no estimate."""
    if value is None or pd.isna(value):
        return MISSING
    interval = MISSING if pd.isna(low) or pd.isna(high) else f"{_signed(low)}, {_signed(high)}"
    return f"{_signed(value)} [{interval}]"


def _sign_text(sign: int) -> str:
    return "+" if sign > 0 else "−"


def _notes() -> list[str]:
    signs = "; ".join(f"{_sign_text(m.less_collapse)} for {m.name} ({m.direction})" for m in LABEL_FREE_METRICS.values())
    level = f"{100 * CONFIDENCE:g} %"
    return [
        ("rows: for each architecture and probe accuracy (validation set), how well each label-free metric "
         "(training set, no labels; see runs.md) forecasts the accuracy across the trained runs of that "
         f"architecture (the floors excluded): `{POOLED}` over every method, then within each method"),
        ("**Spearman ρ**: the Pearson correlation of the average ranks (ties share their mean rank); "
         "**Kendall τ-b**: (concordant − discordant pairs) / √(pairs untied in the metric × pairs untied in "
         "the accuracy)"),
        (f"**[{level} interval]**: bootstrap percentile interval over {N_RESAMPLES} resamples (seed {SEED}) of the "
         "settings: a drawn setting brings all its seeds (a cluster bootstrap, since the seeds of a setting "
         "are not independent runs); a group with a single setting resamples its runs. Resamples in which "
         "the metric or the accuracy is constant are dropped; with fewer than "
         f"{100 * MIN_VALID:g} % of them left the interval is {MISSING}"),
        f"**expected sign**: the sign the correlation has if the metric forecasts accuracy: {signs}",
        (f"**verdict**: *{FORECASTS}* where the interval of ρ excludes 0 on the expected side, *{REVERSED}* "
         f"where it excludes 0 on the other side, *{UNDETERMINED}* otherwise, and always below {MIN_UNITS} "
         "resampled units (settings, or the runs of a single-setting group): there a bootstrap cannot tell "
         "chance from a trend (3 exchangeable units fall in perfect order by chance once in 6, and every "
         "resample of a perfect order agrees)"),
        (f"**n runs**, **n settings**: the runs with both values (a run without the metric, {MISSING} in "
         "runs.md, is left out of that metric's rows) and their settings (seed groups)"),
    ]


_MARKDOWN_HEADERS = ["metric", "group", "expected sign", "n runs", "n settings", "Spearman ρ [interval]",
                     "Kendall τ-b [interval]", "verdict"]


def _markdown_rows(rows: pd.DataFrame) -> list[list[str]]:
    return [
        [LABEL_FREE_METRICS[r["metric"]].name, str(r["group"]), _sign_text(r["expected_sign"]), str(int(r["n_runs"])),
         str(int(r["n_settings"])), format_estimate(r["spearman"], r["spearman_low"], r["spearman_high"]),
         format_estimate(r["kendall"], r["kendall_low"], r["kendall_high"]), str(r["verdict"])]
        for _, r in rows.iterrows()
    ]


def summary_line(forecast: pd.DataFrame, probe: str = "linear_top1") -> str:
    """Which metrics forecast ``probe`` pooled over each arch's trained runs, and which do not."""
    pooled = forecast[(forecast["group"] == POOLED) & (forecast["probe"] == probe)]
    if pooled.empty:
        return f"**Summary:** fewer than {MIN_RUNS} trained runs: no metric can be tested as a forecast."
    parts = []
    for arch, rows in pooled.groupby("arch", sort=False):
        names = {key: LABEL_FREE_METRICS[key].name for key in rows["metric"]}
        good = [names[r["metric"]] for _, r in rows.iterrows() if r["verdict"] == FORECASTS]
        bad = [f"{names[r['metric']]} ({r['verdict']})" for _, r in rows.iterrows() if r["verdict"] != FORECASTS]
        text = f"{arch} ({int(rows['n_runs'].max())} trained runs): {PROBES.get(probe, probe)} is forecast by "
        text += ", ".join(good) if good else "none of the metrics"
        parts.append(text + (f"; not by {', '.join(bad)}" if bad else ""))
    return "**Summary** (pooled over methods): " + "; ".join(parts) + "."


def forecast_markdown(forecast: pd.DataFrame, table: pd.DataFrame) -> str:
    """The page: title, notes, one table per arch and probe, and the summary computed from them."""
    parts = ["# Forecasting accuracy without labels", "\n".join(f"- {note}" for note in _notes())]
    if forecast.empty:
        parts.append(f"_Only {len(trained_runs(table))} trained runs: a forecast needs at least {MIN_RUNS} "
                     "(more settings or seeds fill this table)._")
    for (arch, probe), rows in forecast.groupby(["arch", "probe"], sort=False):
        parts += [f"## {arch} · {PROBES.get(probe, probe)}",
                  pipe_table(_MARKDOWN_HEADERS, _markdown_rows(rows), [False, False, False, True, True, True, True,
                                                                       False])]
    parts.append(summary_line(forecast))
    return "\n\n".join(parts) + "\n"


def write_forecast(table: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """Write forecast.csv and forecast.md into ``out_dir`` (a header and a note below ``MIN_RUNS``
    trained runs, so that a workflow can always declare both); return both paths."""
    forecast = forecast_table(table)
    csv_path, md_path = Path(out_dir) / f"{NAME}.csv", Path(out_dir) / f"{NAME}.md"
    write_csv(csv_path, forecast)
    io.write_text(md_path, forecast_markdown(forecast, table))
    return [csv_path, md_path]
