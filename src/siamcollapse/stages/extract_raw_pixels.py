"""The raw-pixel floor: eval-transformed pixels of train and val as features, and their spectrum.

No backbone and no checkpoint: the features are the normalised eval-transformed images, area-
downsampled to ``raw_pixels.max_side`` when larger, flattened (``evaluation.features.RawPixels``).
The linear probe and kNN stages then run on them as on any run's features. The run record
(``run.json``) and the settings it ran with (``config.yaml``), written by pretraining for every
other run, are written here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from .. import plan
from ..data.catalog import evaluation_data
from ..evaluation.features import LidarSettings, RawPixels, extract, write_spectrum_outputs
from ..fingerprint import state_fingerprint
from ..io import write_json, write_text
from ..names import RAW_PIXELS_SOURCE

RESOURCES = "extract"
PLANS_RUNS = True  # finds the floor's run through the plan: sees the whole config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--features-dir", type=Path, required=True)
    parser.add_argument("--spectrum", type=Path, required=True, help="CSV of singular values and their curves")
    parser.add_argument("--summary", type=Path, required=True, help="JSON of spectrum metrics (AUC, RankMe, ...)")
    parser.add_argument("--info", type=Path, required=True, help="the run record (run.json)")
    parser.add_argument("--settings", type=Path, required=True, help="the resolved settings it ran with (config.yaml)")


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    run = plan.find_run(config, plan.RAW_PIXELS, args.configfiles[-1])  # a clear error where the config turns the floor off
    dataset, evaluation = config["dataset"], config["evaluation"]
    pixels = RawPixels(dataset["image_size"], config["raw_pixels"]["max_side"])
    data = evaluation_data(dataset)
    spectra, lidar = extract(pixels, state_fingerprint(pixels), data, args.data_root, args.features_dir,
                             evaluation["batch_size"], evaluation["num_workers"], RAW_PIXELS_SOURCE,
                             LidarSettings.from_config(evaluation, config["augment"]))
    summary = write_spectrum_outputs(args.spectrum, args.summary, spectra, lidar)
    info = {**run.info(), "pixels_side": pixels.side}
    settings = {"run": info, "data": data, "evaluation": evaluation, "raw_pixels": config["raw_pixels"]}
    write_text(args.settings, yaml.safe_dump(settings, sort_keys=False))
    write_json(args.info, info)
    print(f"raw pixels ({pixels.side}x{pixels.side}): {summary['dims']} features")
