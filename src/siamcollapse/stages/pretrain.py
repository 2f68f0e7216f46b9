"""Self-supervised pretraining of one run (or the initialisation of a random-init baseline)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from .. import plan
from ..errors import UserInputError
from ..io import read_json
from ..training.loop import pretrain

RESOURCES = "pretrain"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run name, as listed by the plan (e.g. simsiam-resnet18-10pct)")
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--subset", type=Path, default=None, help="subset index file (not for random-init)")
    parser.add_argument("--out-dir", type=Path, required=True)


def check_subset(run: plan.Run, subset: Path | None) -> None:
    """The subset file must be the one of the run's fraction (a baseline takes none)."""
    if run.is_baseline:
        if subset is not None:
            raise UserInputError(f"run '{run.name}' is an untrained baseline: it takes no --subset")
        return
    if subset is None:
        raise UserInputError(f"run '{run.name}' trains on {run.dataset_fraction:g} of the data: give its --subset")
    recorded = read_json(subset).get("fraction") if subset.is_file() else None  # the rest: read_subset checks
    if recorded is not None and not math.isclose(recorded, run.dataset_fraction):
        raise UserInputError(f"{subset} is the subset of fraction {recorded:g}, but run "
                             f"'{run.name}' trains on {run.dataset_fraction:g}")


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    run = plan.find_run(config, args.run)
    check_subset(run, args.subset)
    pretrain(plan.pretrain_settings(config, run), args.data_root, args.subset, args.out_dir)
