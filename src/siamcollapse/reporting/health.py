"""Whether each run trained sanely: ``ok``, ``collapsed`` or ``diverged``.

A run whose training blew up or collapsed completely still finishes every stage, with
accuracies and a spectrum; unflagged, it would sit in the tables beside the healthy runs. The
rules, with thresholds from ``report.health`` (the schema gives each one's reason):

- **diverged**: a non-finite loss or metric, or a largest singular value of the features more
  than ``diverged_scale`` times that of the untrained floor of the same architecture (trained
  runs sit within a few times the floor's; a finite blow-up at thousands);
- **collapsed**: the projector's outputs have shrunk to nearly one point (the last epoch's
  ``z_std`` below ``collapsed_z_std`` times its healthy value 1/sqrt(d), SimSiam's indicator of
  complete collapse), or the features' effective rank is below ``collapsed_effective_rank``.

The floors are references: only a non-finite value flags them.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from siamcollapse.names import RANDOM_INIT, RAW_PIXELS

HEALTH, HEALTH_REASON = "health", "health_reason"
OK, COLLAPSED, DIVERGED = "ok", "collapsed", "diverged"
UNHEALTHY_MARK = "†"  # beside a table row (or setting) with a collapsed or diverged run
# Values that are NaN only when something broke (α-ReQ, say, is NaN for a spectrum of rank one:
# a collapse, which the rules below name).
_FINITE_CHECKED = ("auc", "linear_top1", "knn_top1", "effective_rank", "top_singular_value", "final_loss", "z_std")


def non_finite_keys(record: dict[str, Any]) -> str | None:
    """The keys of a run record whose values are NaN or infinite (in a table they would look
    like absent values), comma-separated; None when every number is finite."""
    bad = [key for key in _FINITE_CHECKED if isinstance(record.get(key), float) and not math.isfinite(record[key])]
    return ", ".join(bad) or None


def _value(row: pd.Series, column: str) -> float | None:
    value = row.get(column)
    return None if value is None or pd.isna(value) else float(value)


def run_health(row: pd.Series, floor_top: float | None, thresholds: dict[str, float]) -> tuple[str, str]:
    """(state, reason) of one run-table row; ``floor_top``: its architecture's untrained top
    singular value (None: no floor in this experiment)."""
    bad = row.get("non_finite")
    if isinstance(bad, str) and bad:
        return DIVERGED, f"not finite: {bad}"
    if row["method"] in (RANDOM_INIT, RAW_PIXELS):
        return OK, ""
    top = _value(row, "top_singular_value")
    if top is not None and floor_top and top > thresholds["diverged_scale"] * floor_top:
        return DIVERGED, (f"largest singular value {top:.4g} is {top / floor_top:.0f}x the untrained floor's "
                          f"(limit {thresholds['diverged_scale']:g}x)")
    z_std, healthy = _value(row, "z_std"), _value(row, "z_std_healthy")
    if z_std is not None and healthy and z_std < thresholds["collapsed_z_std"] * healthy:
        return COLLAPSED, (f"z_std {z_std:.3g} is {z_std / healthy:.2f} of its healthy {healthy:.3g} "
                           f"(limit {thresholds['collapsed_z_std']:g})")
    rank = _value(row, "effective_rank")
    if rank is not None and rank < thresholds["collapsed_effective_rank"]:
        return COLLAPSED, f"effective rank {rank:.2f} (limit {thresholds['collapsed_effective_rank']:g})"
    return OK, ""


def assess(table: pd.DataFrame, thresholds: dict[str, Any]) -> pd.DataFrame:
    """``table`` with a ``health`` and a ``health_reason`` column (``thresholds``: the config's
    ``report.health``)."""
    floors = table[table["method"] == RANDOM_INIT]
    floor_top = pd.to_numeric(floors.get("top_singular_value"), errors="coerce").groupby(floors["arch"]).mean() \
        if "top_singular_value" in floors else pd.Series(dtype=float)
    states = [run_health(row, floor_top.get(row["arch"]), thresholds) for _, row in table.iterrows()]
    return table.assign(**{HEALTH: [s for s, _ in states], HEALTH_REASON: [r for _, r in states]})


def unhealthy(table: pd.DataFrame) -> pd.DataFrame:
    """The rows flagged collapsed or diverged (none in a table without a health column)."""
    if HEALTH not in table:
        return table.iloc[0:0]
    return table[table[HEALTH] != OK]


def health_note(table: pd.DataFrame) -> str:
    """The footnote of a table whose rows include ``table``'s runs: one line per collapsed or
    diverged run with its reason ('' when every run is healthy)."""
    rows = unhealthy(table)
    lines = [f"- `{row['run']}` **{row[HEALTH]}**: {row[HEALTH_REASON]}" for _, row in rows.iterrows()]
    return f"{UNHEALTHY_MARK} Unhealthy runs (report.health; their numbers are not a trained representation's):\n" \
        + "\n".join(lines) if lines else ""
