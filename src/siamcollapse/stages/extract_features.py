"""Backbone features of train and val, their spectra (raw and L2-normalised) with the label-free
collapse metrics, and LiDAR on augmented views of training images."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from ..data.catalog import evaluation_data
from ..errors import TrainingDiverged
from ..evaluation.features import LidarSettings, extract, write_spectrum_outputs
from ..evaluation.spectrum import NonFiniteFeatures
from ..names import BACKBONE_SOURCE
from ..training.checkpoint import load_backbone

RESOURCES = "extract"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--run-settings", type=Path, required=True,
                        help="the run's resolved settings (config.yaml): LiDAR's views use its augmentation")
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--features-dir", type=Path, required=True)
    parser.add_argument("--spectrum", type=Path, required=True, help="CSV of singular values and their curves")
    parser.add_argument("--summary", type=Path, required=True, help="JSON of spectrum metrics (AUC, RankMe, ...)")


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    backbone, meta = load_backbone(args.checkpoint)
    dataset, evaluation = config["dataset"], config["evaluation"]
    data = evaluation_data(dataset)
    # A trained run's views are its own training augmentation; an untrained floor has none of
    # its own and takes the experiment's.
    augment = yaml.safe_load(args.run_settings.read_text()).get("augment") or config["augment"]
    try:
        spectra, lidar = extract(backbone, meta["fingerprint"], data, args.data_root, args.features_dir,
                                 evaluation["batch_size"], evaluation["num_workers"], BACKBONE_SOURCE,
                                 LidarSettings.from_config(evaluation, augment))
    except NonFiniteFeatures as err:  # a run trained without tracking, whose weights blew up
        raise TrainingDiverged(f"the backbone of {args.checkpoint} gives non-finite features ({err}): its run "
                               "diverged; lower its base_lr and retrain it") from err
    write_spectrum_outputs(args.spectrum, args.summary, spectra, lidar)
