"""Linear probe on cached features; top-1 on val. Checks the backbone is the one features came from.

The check reads the checkpoint's stored weights and fingerprint without building the network: the
probe never runs the backbone, so it loads no model code (see ``training.checkpoint``).

Features of the raw-pixel floor come from no backbone: they take no ``--checkpoint``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from ..evaluation.linear_probe import top1, train_linear_probe
from ..io import load_tensors, read_json, write_json
from ..layout import FeatureDir
from ..names import RAW_PIXELS_SOURCE
from ..training.checkpoint import verified_backbone_meta

RESOURCES = "default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, default=None, help="the backbone the features came from "
                        "(every run but the raw-pixel floor)")
    parser.add_argument("--features-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)


def check_features(features_dir: Path, checkpoint: Path | None) -> str | None:
    """The fingerprint of the backbone the features came from (None for raw pixels); a
    UserInputError unless backbone features come with their own checkpoint and raw pixels with none."""
    cached = read_json(FeatureDir(features_dir).meta)
    if cached.get("source") == RAW_PIXELS_SOURCE:
        if checkpoint is not None:
            raise UserInputError(f"features in {features_dir} are raw pixels: they take no --checkpoint")
        return None
    if checkpoint is None:
        raise UserInputError(f"features in {features_dir} come from a backbone: give its --checkpoint")
    meta = verified_backbone_meta(checkpoint)
    if cached["fingerprint"] != meta["fingerprint"]:
        raise UserInputError(f"features in {features_dir} were not extracted from {checkpoint}; "
                             "rerun the extract stage")
    return meta["fingerprint"]


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    fingerprint = check_features(args.features_dir, args.checkpoint)
    features = FeatureDir(args.features_dir)
    train, train_labels = load_tensors(*features.split("train"))
    val, val_labels = load_tensors(*features.split("val"))
    settings = dict(config["linear_probe"])
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    head, standardiser = train_linear_probe(train, train_labels, settings, num_classes)
    result = {"linear_top1": top1(head, standardiser, val, val_labels),
              "linear_train_top1": top1(head, standardiser, train, train_labels),
              "linear_probe_mode": "cached",
              "backbone_unchanged": fingerprint is not None or None, "backbone_fingerprint": fingerprint, **settings}
    write_json(args.out, result)
    print(f"linear probe: val top-1 {result['linear_top1']:.2f}% (train {result['linear_train_top1']:.2f}%)")
