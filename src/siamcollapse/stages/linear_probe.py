"""Linear probe on cached features; top-1 on val. Checks the backbone is the one features came from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from ..evaluation.features import load_features
from ..evaluation.linear_probe import top1, train_linear_probe
from ..io import read_json, write_json
from ..models.backbones import state_fingerprint
from ..training.checkpoint import load_backbone

RESOURCES = "default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--features-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    backbone, meta = load_backbone(args.checkpoint)
    cached = read_json(args.features_dir / "meta.json")["fingerprint"]
    if cached != meta["fingerprint"] or state_fingerprint(backbone) != meta["fingerprint"]:
        raise UserInputError(f"features in {args.features_dir} were not extracted from {args.checkpoint}; "
                             "rerun the extract stage")
    train, train_labels = load_features(args.features_dir, "train")
    val, val_labels = load_features(args.features_dir, "val")
    settings = dict(config["linear_probe"])
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    head, standardiser = train_linear_probe(train, train_labels, settings, num_classes)
    if state_fingerprint(backbone) != meta["fingerprint"]:
        raise RuntimeError("the backbone changed during linear probing")
    result = {"linear_top1": top1(head, standardiser, val, val_labels),
              "linear_train_top1": top1(head, standardiser, train, train_labels),
              "backbone_unchanged": True, "backbone_fingerprint": meta["fingerprint"], **settings}
    write_json(args.out, result)
    print(f"linear probe: val top-1 {result['linear_top1']:.2f}% (train {result['linear_train_top1']:.2f}%)")
