"""Write the index file of one nested subset of the training set."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..data.catalog import scan_labels
from ..data.subsets import write_subset

RESOURCES = "default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fraction", type=float, required=True, help="fraction of the training set, in (0, 1]")
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    subsets = config["subsets"]
    labels, _ = scan_labels(config["dataset"]["source"], args.data_root, "train")
    record = write_subset(args.out, np.asarray(labels), args.fraction, subsets["seed"], subsets["stratified"])
    print(f"subset {args.fraction:g}: {record['count']} of {record['num_train']} training images, "
          f"{record['classes_present']} classes -> {args.out}")
