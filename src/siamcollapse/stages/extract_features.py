"""Backbone features of train and val, and the train spectrum with its collapse metrics."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..evaluation.features import extract
from ..io import write_json
from ..metrics import spectrum_summary
from ..names import BACKBONE_SOURCE
from ..spectrum_csv import write_spectrum
from ..training.checkpoint import load_backbone

RESOURCES = "extract"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--features-dir", type=Path, required=True)
    parser.add_argument("--spectrum", type=Path, required=True, help="CSV of singular values and their curves")
    parser.add_argument("--summary", type=Path, required=True, help="JSON of spectrum metrics (AUC)")


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    backbone, meta = load_backbone(args.checkpoint)
    dataset, evaluation = config["dataset"], config["evaluation"]
    data = {k: dataset[k] for k in ("source", "image_size", "in_memory")}
    singular_values = extract(backbone, meta["fingerprint"], data, args.data_root, args.features_dir,
                              evaluation["batch_size"], evaluation["num_workers"], BACKBONE_SOURCE)
    write_spectrum(args.spectrum, singular_values)
    summary = {**spectrum_summary(singular_values), "split": "train"}
    write_json(args.summary, summary)
    print(f"train spectrum: AUC {summary['auc']:.4f}, effective rank {summary['effective_rank']:.1f} "
          f"of {summary['dims']} dimensions")
