"""Weighted kNN on L2-normalised features; top-1 on val for every configured k."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import UserInputError
from ..evaluation.knn import knn_top1
from ..io import load_npy, write_json
from ..layout import FeatureDir

RESOURCES = "default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--features-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    ks, temperature = config["knn"]["k"], config["knn"]["temperature"]
    features = FeatureDir(args.features_dir)
    train, train_labels = (load_npy(path) for path in features.split("train"))
    val, val_labels = (load_npy(path) for path in features.split("val"))
    if max(ks) > len(train):  # found before any job where the config gives the dataset's size (preflight)
        raise UserInputError(f"config: key 'knn.k': {max(ks)} neighbours, but the training features in "
                             f"{args.features_dir} hold {len(train)} images; every k must be at most {len(train)}")
    accuracy = knn_top1(train, train_labels, val, val_labels, ks, temperature)
    # the classes, so that tables can print the chance level (100 / classes) beside every result
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    result = {"knn_top1": accuracy[ks[0]], "knn_k": ks[0], "temperature": temperature, "num_classes": num_classes,
              **{f"knn_top1_k{k}": v for k, v in accuracy.items()}}
    write_json(args.out, result)
    print("kNN top-1: " + ", ".join(f"k={k}: {v:.2f}%" for k, v in accuracy.items()))
