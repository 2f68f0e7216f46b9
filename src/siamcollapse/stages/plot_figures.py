"""Spectrum, AUC, training and forecast figures (PNG): every one of ``layout.FIGURE_NAMES``, and
the pretraining curves of each run group given.

Reads the run table, each run's spectrum and, where the run has one (every run but the
raw-pixel floor), its train log with the metrics tracked during training.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import read_json
from ..layout import FIGURE_NAMES, RunDir
from ..reporting.tables import read_run_table
from ..reporting.training_plots import make_all_figures, read_train_log
from ..spectrum_csv import read_spectrum

RESOURCES = None  # reads only the runs' result files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", type=Path, required=True, help="runs.csv written by `siamcollapse collect-tables`")
    parser.add_argument("--run-dirs", type=Path, nargs="+", required=True,
                        help="run directories: each one's spectrum and, where it has one, its train log are read")
    parser.add_argument("--out-dir", type=Path, required=True, help=f"written: {', '.join(FIGURE_NAMES)}")
    parser.add_argument("--run-groups", nargs="*", default=[],
                        help="run groups whose pretraining curves get a figure each: run_groups/<group>.png")


def run(args: argparse.Namespace, config: None) -> None:
    table = read_run_table(args.table)  # validated, and null where an older table lacks a column
    spectra, logs = {}, {}
    for run_dir in map(RunDir, args.run_dirs):
        name = read_json(run_dir.info)["run"]
        spectra[name] = read_spectrum(run_dir.spectrum)
        if run_dir.train_log.exists():
            logs[name] = read_train_log(run_dir.train_log)
    for path in make_all_figures(table, spectra, logs, args.out_dir, args.run_groups):
        print(f"wrote {path}")
