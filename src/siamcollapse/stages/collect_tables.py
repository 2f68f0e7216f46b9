"""Gather every run's metrics into results tables (CSV and Markdown).

Writes ``layout.TABLE_FILES`` into ``--out-dir``: the run table (runs.csv, runs.md), the
paper-shaped tables (distillation, training_methods, strategies), the forecast of accuracy by
the label-free metrics (forecast; each .csv and .md) and the long table of every spectrum's
metrics (metrics.csv), every one of them even when empty, so a workflow can declare them all as
outputs; and ``layout.COST_TABLE_FILES``, what each job cost, from the benchmark files under
``--benchmarks`` (measurements, not results: not inputs of the stage, so they never rerun it).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from ..io import read_json, write_text
from ..layout import COST_TABLE_FILES, TABLE_FILES, RunDir
from ..reporting.costs import cost_markdown, read_benchmarks
from ..reporting.health import assess, non_finite_keys
from ..reporting.paper import write_result_tables
from ..reporting.tables import LABEL_FREE_COLUMNS, build_run_table, metrics_table, spectrum_metric_rows, write_csv

RESOURCES = None  # reads only the runs' result files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--out-dir", type=Path, required=True,
                        help=f"written: {', '.join(TABLE_FILES + COST_TABLE_FILES)}")
    parser.add_argument("--benchmarks", type=Path, default=None,
                        help="Snakemake's benchmark files, <DIR>/<rule>/<job>.tsv (none: empty cost tables)")
    parser.add_argument(
        "--compare-to-paper",
        action="store_true",
        help="add the paper's published ImageNet linear top-1 beside ours (the config's report.compare_to_paper)",
    )
    parser.add_argument("--health", type=json.loads, required=True, metavar="JSON",
                        help="thresholds of the health column: the config's report.health, e.g. "
                             '\'{"diverged_scale": 100, "collapsed_z_std": 0.2, "collapsed_effective_rank": 2}\'')


def last_epoch(train_log: Path, columns: tuple[str, ...] = ("loss", "z_std", "z_std_healthy")) -> dict[str, float]:
    """``columns`` of the last row of a run's train log ({} for a run that never trained)."""
    if not train_log.is_file():
        return {}
    with open(train_log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: float(rows[-1][key]) for key in columns if rows[-1].get(key) not in ("", None)} if rows else {}


def run_record(run_dir: Path, spectrum: dict[str, Any] | None = None) -> dict[str, Any]:
    """One row of the run table: the run's record plus its collapse metrics and accuracies.

    The headline label-free metrics come from spectrum.json (``spectrum``, read if not given);
    one an older summary lacks is null in the table.
    """
    files = RunDir(run_dir)
    record = read_json(files.info)
    spectrum = read_json(files.spectrum_summary) if spectrum is None else spectrum
    record.update(auc=spectrum["auc"], **{key: spectrum.get(key) for key in LABEL_FREE_COLUMNS})
    record.update({k: v for k, v in read_json(files.linear_probe).items() if k.startswith("linear_")})
    knn = read_json(files.knn)
    record.update({k: v for k, v in knn.items() if k.startswith("knn_")})
    if "num_classes" in knn:  # for the chance level
        record["num_classes"] = knn["num_classes"]
    # what the health column reads: the spectrum's scale and the last epoch's loss and z_std
    last = last_epoch(files.train_log)
    record.update(top_singular_value=spectrum.get("top_singular_value"), final_loss=last.get("loss"),
                  z_std=last.get("z_std"), z_std_healthy=last.get("z_std_healthy"))
    record["non_finite"] = non_finite_keys(record)
    return record


def run(args: argparse.Namespace, config: None) -> None:
    records, rows = [], []
    for run_dir in args.run_dirs:
        spectrum = read_json(RunDir(run_dir).spectrum_summary)
        records.append(run_record(run_dir, spectrum))
        rows += spectrum_metric_rows(records[-1], spectrum)
    table = assess(build_run_table(records), args.health)
    paths = write_result_tables(table, args.out_dir, compare_to_paper=args.compare_to_paper, metrics=metrics_table(rows))
    costs = read_benchmarks(args.benchmarks)
    paths += [args.out_dir / name for name in COST_TABLE_FILES]
    write_csv(paths[-2], costs)
    write_text(paths[-1], cost_markdown(costs, args.benchmarks))
    print(f"{len(table)} runs -> {', '.join(str(p) for p in paths)}")
