"""`siamcollapse estimate-compute`: a planned experiment's pretraining compute, from measured costs.

Reads the ``costs.csv`` of a finished Snakemake run and the config that run used, and scales each
measured run's seconds per pixel-view to the runs another config plans (for instance
``configs/paper-imagenet.yaml``); prints a Markdown page (and writes it with ``--out``) that
names the measured runs behind each estimate, the machine, and the assumptions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import json_object, load_experiment
from .errors import UserInputError
from .io import write_text
from .layout import COST_TABLE_FILES
from .reporting.compute_estimate import Experiment, estimate_page, train_images


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--costs", type=Path, required=True, metavar="FILE",
                        help=f"{COST_TABLE_FILES[0]} of a finished Snakemake run (in its tables folder)")
    parser.add_argument("--measured-config", type=Path, required=True, metavar="FILE",
                        help="the config that run used")
    parser.add_argument("--measured-set", type=json_object, default=None, metavar="JSON",
                        help="the overrides that run used on top of its config, as a stage takes them")
    parser.add_argument("--target-config", type=Path, required=True, metavar="FILE",
                        help="the config to estimate, e.g. configs/paper-imagenet.yaml (its dataset need not exist)")
    parser.add_argument("--target-set", type=json_object, default=None, metavar="JSON",
                        help="overrides on top of the target config")
    parser.add_argument("--train-images", type=int, default=None, metavar="N",
                        help="training images of the target's dataset, needed where its steps_per_epoch is null "
                             "and the config does not say (an image folder; ImageNet-1k: 1281167)")
    parser.add_argument("--measured-train-images", type=int, default=None, metavar="N",
                        help="the same for the measured run's dataset")
    parser.add_argument("--machine", default=None, metavar="TEXT",
                        help="the machine that measured the costs (default: this machine's system and CPU)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="also write the page to FILE")


def _experiment(path: Path, overrides: dict | None, num_train: int | None) -> Experiment:
    config = load_experiment([path], overrides)
    return Experiment(config, str(path), train_images(config, num_train))


def main(args: argparse.Namespace) -> int:
    try:
        measured = _experiment(args.measured_config, args.measured_set, args.measured_train_images)
        target = _experiment(args.target_config, args.target_set, args.train_images)
        page = estimate_page(args.costs, measured, target, args.machine)
    except UserInputError as exc:
        print(f"siamcollapse estimate-compute: error: {exc}", file=sys.stderr)
        return 2
    print(page, end="")
    if args.out is not None:
        write_text(args.out, page)
    return 0
