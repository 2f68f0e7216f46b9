"""Spectrum and AUC figures (PNG): the seven of ``layout.FIGURE_NAMES``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import read_json
from ..layout import FIGURE_NAMES, RunDir
from ..reporting.plots import make_all_figures
from ..reporting.tables import read_run_table
from ..spectrum_csv import read_spectrum

RESOURCES = None  # reads only the runs' result files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", type=Path, required=True, help="runs.csv written by `siamcollapse collect-tables`")
    parser.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--out-dir", type=Path, required=True, help=f"written: {', '.join(FIGURE_NAMES)}")


def run(args: argparse.Namespace, config: None) -> None:
    table = read_run_table(args.table)  # validated, and null where an older table lacks a column
    spectra = {read_json(RunDir(d).info)["run"]: read_spectrum(RunDir(d).spectrum) for d in args.run_dirs}
    for path in make_all_figures(table, spectra, args.out_dir):
        print(f"wrote {path}")
