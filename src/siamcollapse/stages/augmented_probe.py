"""The paper's linear probe: augmented images through the frozen backbone, LARS; top-1 on val."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..data.catalog import evaluation_data
from ..errors import UserInputError
from ..evaluation.augmented_probe import run_augmented_probe
from ..fingerprint import state_fingerprint
from ..io import write_json
from ..training.checkpoint import load_backbone

RESOURCES = "extract"  # every step is a backbone forward: the GPU family, like extraction
MODE = "augmented"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="metrics JSON")


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    backbone, meta = load_backbone(args.checkpoint)
    if state_fingerprint(backbone) != meta["fingerprint"]:
        raise UserInputError(f"{args.checkpoint} is corrupt: its weights do not match their recorded fingerprint")
    dataset, evaluation = config["dataset"], config["evaluation"]
    data = evaluation_data(dataset)
    # The settings that ran: this command is the augmented probe whatever linear_probe.mode says.
    settings = {**config["linear_probe"], "mode": MODE}
    metrics = run_augmented_probe(backbone, data, args.data_root, settings, evaluation["batch_size"],
                                  evaluation["num_workers"])
    write_json(args.out, {**metrics, **settings, "linear_probe_mode": MODE})
    top5 = f", top-5 {metrics['linear_top5']:.2f}%" if "linear_top5" in metrics else ""
    print(f"augmented linear probe: val top-1 {metrics['linear_top1']:.2f}%{top5} "
          f"(train {metrics['linear_train_top1']:.2f}%)")
