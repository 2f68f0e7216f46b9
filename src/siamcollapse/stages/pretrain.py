"""Self-supervised pretraining of one run (or the initialisation of a random-init baseline).

A distillation student also takes its teacher's checkpoint. A hybrid run continues the training
state of its single-pass run at epoch K (``--init-state``); the single-pass run is itself trained
in segments that stop at each such epoch (``--stop-after-epoch K --state-out FILE``).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from .. import plan
from ..errors import UserInputError
from ..io import read_json, write_json
from ..layout import RunDir
from ..training.checkpoint import settings_hash
from ..training.loop import Segment, pretrain
from ..training.tracking import tracking_of

RESOURCES = "pretrain"
PLANS_RUNS = True  # resolves its run (and its teacher or hybrid source) through the plan: sees the whole config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run name, as listed by the plan (e.g. simsiam-resnet18-10pct)")
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--subset", type=Path, default=None, help="subset index file (not for random-init)")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (distillation students)")
    parser.add_argument("--init-state", type=Path, default=None, help="training state to continue (see module doc)")
    parser.add_argument("--stop-after-epoch", type=int, default=None, help="end this segment after this epoch...")
    parser.add_argument("--state-out", type=Path, default=None, help="...and write its training state here")


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


def check_inputs(config: dict[str, Any], run: plan.Run, args: argparse.Namespace) -> Segment:
    """The segment of ``run`` this command trains, after checking its extra inputs match the plan."""
    runs = plan.expand_runs(config)
    if (run.teacher is None) != (args.teacher is None):
        raise UserInputError(f"run '{run.name}' " + (f"is distilled from '{run.teacher.name}': give its --teacher"
                                                      if run.teacher else "has no teacher: drop --teacher"))
    if (args.stop_after_epoch is None) != (args.state_out is None):
        raise UserInputError("--stop-after-epoch and --state-out go together")
    if args.stop_after_epoch is not None and args.stop_after_epoch not in plan.snapshot_epochs(runs, run.name):
        raise UserInputError(f"run '{run.name}' saves no state after epoch {args.stop_after_epoch} in this config")
    start = plan.initial_state(runs, run.name, args.stop_after_epoch)
    if (start is None) != (args.init_state is None):
        raise UserInputError(f"run '{run.name}' " + (f"continues the epoch-{start[1]} state of '{start[0]}': give "
                                                      "its --init-state" if start else "starts from scratch: drop --init-state"))
    init_hash = settings_hash(plan.pretrain_settings(config, runs[start[0]])) if start else None
    return Segment(args.init_state, init_hash, args.stop_after_epoch, args.state_out)


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    run = plan.find_run(config, args.run, args.configfiles[-1])
    check_subset(run, args.subset)
    segment = check_inputs(config, run, args)
    pretrain(plan.pretrain_settings(config, run), args.data_root, args.subset, args.out_dir, args.teacher, segment,
             tracking_of(config, plan.output_tree(config)))
    if int(os.environ.get("RANK", "0")) == 0:  # which config trained it: another one must not retrain it here
        write_json(RunDir(args.out_dir).written_by, {"config_files": [str(path) for path in args.configfiles]})
