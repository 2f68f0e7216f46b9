"""Gather every run's metrics into results tables (CSV and Markdown)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..io import read_json
from ..reporting.tables import build_run_table, write_run_table

RESOURCES = None  # reads only the runs' result files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--out-csv", type=Path, required=True)
    parser.add_argument("--out-md", type=Path, required=True)


def run_record(run_dir: Path) -> dict[str, Any]:
    record = read_json(run_dir / "run.json")
    spectrum = read_json(run_dir / "spectrum.json")
    record.update(auc=spectrum["auc"], effective_rank=spectrum["effective_rank"])
    record.update({k: v for k, v in read_json(run_dir / "linear_probe.json").items() if k.startswith("linear_")})
    record.update({k: v for k, v in read_json(run_dir / "knn.json").items() if k.startswith("knn_")})
    return record


def run(args: argparse.Namespace, config: None) -> None:
    table = build_run_table([run_record(d) for d in args.run_dirs])
    write_run_table(table, args.out_csv, args.out_md)
    print(f"{len(table)} runs -> {args.out_csv}, {args.out_md}")
