"""Spectrum and AUC figures (PNG)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..io import read_json
from ..reporting.plots import make_all_figures
from ..reporting.tables import read_spectrum

RESOURCES = None  # reads only the runs' result files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", type=Path, required=True)
    parser.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    parser.add_argument("--out-dir", type=Path, required=True)


def run(args: argparse.Namespace, config: None) -> None:
    table = pd.read_csv(args.table)
    spectra = {read_json(d / "run.json")["run"]: read_spectrum(d / "spectrum.csv") for d in args.run_dirs}
    for path in make_all_figures(table, spectra, args.out_dir):
        print(f"wrote {path}")
