"""Everything about an experiment that can be checked before any job runs.

The schema checks each key alone; this checks what keys mean together: the plan (run names,
seeds, schedules), the dataset on disk, the scheduler resources, and the sizes the stages will
meet (a batch split over the job's processes, a ViT's patches tiling the image, a batch or a
kNN k that the training set can fill). Snakemake calls ``check_experiment`` when it builds the
DAG, so does ``siamcollapse dvc-yaml`` (DVC's first stage) and ``siamcollapse validate``; each
error is one line naming the key. Torch-free: Snakemake imports it on every start.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from . import plan
from .config import load_experiment
from .data.subsets import subset_size
from .errors import UserInputError
from .io import read_json
from .models.naming import family as model_family
from .training.tracking import check_installed

MULTI_NODE_FAMILIES = ("pretrain", "distill")  # the stages that train (and so may span nodes)
# Training-split sizes of the torchvision datasets (their official splits; nothing is counted).
_TORCHVISION_TRAIN_SIZES = {"cifar10": 50_000, "cifar100": 50_000, "stl10": 5_000}


def training_set_size(config: dict[str, Any]) -> int | None:
    """Images in the training split, where the config alone says it (None for an image folder:
    its stages check the sizes once they have listed it)."""
    dataset = config["dataset"]
    if dataset["source"] == "embedded":
        return config["embedded"]["num_classes"] * config["embedded"]["train_per_class"]
    return _TORCHVISION_TRAIN_SIZES.get(dataset["source"])


def _where(run: plan.Run) -> str:
    """The config section a run's pretraining settings come from (for errors)."""
    if run.teacher is not None:
        return f"distillations.{run.group}.pretrain"
    return f"runs.{run.group}.pretrain"


def check_resources(resources: dict[str, dict[str, int]]) -> None:
    """Multi-node jobs must be training stages on GPUs (one launcher per node, one process per GPU)."""
    for family, values in resources.items():
        if values.get("nodes", 1) == 1:
            continue
        if family not in MULTI_NODE_FAMILIES:
            raise UserInputError(f"resources.{family}.nodes: only {' and '.join(MULTI_NODE_FAMILIES)} jobs span "
                                 "several nodes; set it to 1")
        if values.get("gpu", 0) < 1:
            raise UserInputError(f"resources.{family}.nodes is {values['nodes']}: a multi-node job trains on GPUs, "
                                 f"so resources.{family}.gpu (GPUs per node) must be at least 1")


def processes(resources: dict[str, int]) -> int:
    """How many training processes a job with these resources starts (one per GPU, per node)."""
    return resources.get("nodes", 1) * max(1, resources.get("gpu", 0))


def check_process_batches(config: dict[str, Any], runs: dict[str, plan.Run]) -> None:
    """Each process of a multi-GPU job takes an equal share of the global batch."""
    for run in runs.values():
        if run.is_floor:
            continue
        family_name = "distill" if run.teacher is not None else "pretrain"
        count = processes(config["resources"][family_name])
        if run.pretrain["batch_size"] % count:
            raise UserInputError(
                f"config: key '{_where(run)}.batch_size': {run.pretrain['batch_size']} does not split over the "
                f"{count} processes of resources.{family_name} (gpu x nodes); make it a multiple of {count}")


def check_vit_patches(runs: dict[str, plan.Run]) -> None:
    """A ViT's patches tile its input exactly."""
    for run in runs.values():
        model = run.model
        if "arch" in model and model_family(model["arch"]) == "vit" and model["image_size"] % model["patch_size"]:
            raise UserInputError(
                f"config: key 'model.patch_size': {model['patch_size']}-pixel patches do not tile the "
                f"{model['image_size']}-pixel images of dataset.image_size (run {run.name}); choose a divisor")


def smallest_pool(run: plan.Run, num_train: int) -> int:
    """The fewest images one epoch of ``run`` draws its batches from: its subset, or for the
    chunked strategies one chunk (``last``: its last chunks)."""
    images = subset_size(run.dataset_fraction, num_train)
    hp = run.pretrain
    chunks = hp.get("chunks") or hp["epochs"]
    if run.strategy in ("single-pass", "cumulative", "hybrid"):
        return images // chunks
    if run.strategy == "last":
        return images * hp["last_chunks"] // chunks
    return images


def check_sizes(config: dict[str, Any], runs: dict[str, plan.Run], num_train: int) -> None:
    """A batch the run's data can fill without repeating an image, and kNN neighbour counts the
    training set holds."""
    for run in runs.values():
        if run.is_floor:
            continue
        pool, batch = smallest_pool(run, num_train), run.pretrain["batch_size"]
        if batch > pool:
            raise UserInputError(
                f"config: key '{_where(run)}.batch_size': {batch} is more than the {pool} images run {run.name} "
                f"draws an epoch's batches from ({plan.fraction_tag(run.dataset_fraction)} of {num_train}, "
                f"strategy {run.strategy}): one batch would repeat images; lower the batch size")
    too_many = [k for k in config["knn"]["k"] if k > num_train]
    if too_many:
        raise UserInputError(f"config: key 'knn.k': {too_many[0]} neighbours, but the training set holds "
                             f"{num_train} images; every k must be at most {num_train}")


def check_output_folder(config: dict[str, Any], runs: dict[str, plan.Run], config_files: list[str]) -> None:
    """No run already trained into this output folder by another config with other settings: this
    config would retrain it there, and the other's results would silently change (an edit of
    the same config file is a rerun, not an error)."""
    for run in runs.values():
        files = plan.run_dir(config, run.name)
        if run.is_raw_pixels or not (files.written_by.is_file() and files.settings.is_file()):
            continue
        written_by = read_json(files.written_by)["config_files"]
        if written_by == config_files:
            continue
        planned = json.loads(json.dumps(plan.pretrain_settings(config, run)))
        if yaml.safe_load(files.settings.read_text()) != planned:
            raise UserInputError(
                f"config: key 'output_dir': {files.path} holds run '{run.name}' as {', '.join(written_by)} trained "
                f"it, with other settings than {', '.join(config_files)} gives it; give this config an output_dir "
                "of its own (each config describes its whole experiment), or delete that run")


def check_experiment(config: dict[str, Any], config_files: list[str] | None = None) -> dict[str, plan.Run]:
    """Check a validated config as far as it can be without running anything; its runs.
    ``config_files``: the files it came from (None: not known, the output folder is not checked)."""
    runs = plan.expand_runs(config)
    plan.check_dataset_root(config)
    check_resources(config["resources"])
    check_process_batches(config, runs)
    check_vit_patches(runs)
    check_installed(config["tracking"]["log_with"])
    num_train = training_set_size(config)
    if num_train is not None:
        check_sizes(config, runs, num_train)
    if config_files is not None:
        check_output_folder(config, runs, config_files)
    return runs


# --- `siamcollapse validate` ----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", dest="configfiles", type=Path, action="append", metavar="FILE",
                        help="experiment config (repeat to merge several, in order; default: config.yaml)")
    parser.add_argument("--set", dest="overrides", type=json.loads, default=None, metavar="JSON",
                        help="overrides on top of the files, as a stage takes them")


def main(args: argparse.Namespace) -> int:
    files = args.configfiles or [Path("config.yaml")]
    try:
        runs = check_experiment(load_experiment(files, args.overrides), [str(path) for path in files])
    except UserInputError as exc:
        print(f"siamcollapse validate: error: {exc}", file=sys.stderr)
        return 2
    print(f"{', '.join(map(str, files))}: valid, {len(runs)} runs")
    return 0
