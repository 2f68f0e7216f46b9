"""What each job cost, from Snakemake's benchmark files (the ``benchmark:`` of every rule).

Snakemake measures each job's process tree: wall seconds, CPU seconds and the largest resident
memory (sampled, so a job of a second or two may show less than it used, and one over before
the first sample, half a second in, none: NA, or 0 when the sample caught only its shell; such a
job's memory is blank here, not measured, never 0 MB). ``costs.csv`` has a
row per job; ``costs.md`` sums them per stage family (the rule), which is what sizes a cluster
job. DVC records no such costs: a `dvc repro` run leaves both tables empty.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

# Snakemake's benchmark columns -> ours.
BENCHMARK_COLUMNS = {"s": "wall_s", "cpu_time": "cpu_s", "max_rss": "max_rss_mb"}
COST_COLUMNS = ["family", "job", *BENCHMARK_COLUMNS.values()]


def read_benchmarks(root: Path | None) -> pd.DataFrame:
    """One row per ``<root>/<family>/<job>.tsv`` (the last line, for a job benchmarked repeatedly)."""
    rows = []
    for path in sorted(Path(root).glob("*/*.tsv")) if root else []:
        try:
            frame = pd.read_csv(path, sep="\t")
            last = frame.iloc[-1]
            row = {"family": path.parent.name, "job": path.stem,
                   **{ours: float(last[theirs]) for theirs, ours in BENCHMARK_COLUMNS.items()}}
            if not row["max_rss_mb"] > 0:  # NA or 0: no sample of the job's own processes
                row["max_rss_mb"] = float("nan")
            rows.append(row)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, IndexError, KeyError, ValueError) as exc:
            warnings.warn(f"{path}: not a Snakemake benchmark file ({exc}); left out of the cost table", stacklevel=2)
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def cost_summary(costs: pd.DataFrame) -> pd.DataFrame:
    """Per stage family: jobs, wall and CPU seconds (total, and the mean and largest job's wall),
    the largest resident memory; the families in the order of their total wall time."""
    grouped = costs.groupby("family")
    summary = pd.DataFrame({
        "jobs": grouped.size(),
        "wall_s": grouped["wall_s"].sum(),
        "mean_wall_s": grouped["wall_s"].mean(),
        "max_wall_s": grouped["wall_s"].max(),
        "cpu_s": grouped["cpu_s"].sum(),
        "max_rss_mb": grouped["max_rss_mb"].max(),
    })
    return summary.sort_values("wall_s", ascending=False).reset_index()


def _megabytes(value: float) -> str:
    return "not measured" if pd.isna(value) else f"{value:.0f}"


def cost_markdown(costs: pd.DataFrame, benchmarks: Path | None) -> str:
    """The Markdown page of ``costs`` (read from ``benchmarks``)."""
    lines = ["# What each stage cost", ""]
    if costs.empty:
        lines.append(f"No benchmark files{f' in {benchmarks}' if benchmarks else ''}: Snakemake writes one per job; "
                     "a `dvc repro` run records none.")
        return "\n".join(lines) + "\n"
    summary = cost_summary(costs)
    intro = ("Per stage family (Snakemake's benchmark of every job: wall and CPU seconds, largest resident memory; "
             f"{len(costs)} jobs, {costs['wall_s'].sum():.0f} s of job time in all).")
    lines += [intro, "", "| stage | jobs | wall s | mean s | max s | CPU s | max RSS MB |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.family} | {r.jobs} | {r.wall_s:.1f} | {r.mean_wall_s:.1f} | {r.max_wall_s:.1f} | {r.cpu_s:.1f} | "
              f"{_megabytes(r.max_rss_mb)} |" for r in summary.itertuples()]
    return "\n".join(lines) + "\n"
