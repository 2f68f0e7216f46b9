"""Self-supervised pretraining of one run (or the initialisation of a random-init baseline)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import plan
from ..training.loop import pretrain

RESOURCES = "pretrain"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run name, as listed by the plan (e.g. simsiam-resnet18-10pct)")
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--subset", type=Path, default=None, help="subset index file (not for random-init)")
    parser.add_argument("--out-dir", type=Path, required=True)


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    run = plan.find_run(config, args.run)
    pretrain(plan.pretrain_settings(config, run), args.data_root, args.subset, args.out_dir)
