"""The experiment plan: which runs a validated config asks for, and each stage's settings.

Both workflow engines read the DAG from here, so a run's name, directory and settings are
computed in one place. Each stage receives exactly the settings it uses, so a change of one
key invalidates only the stages (and runs) that read it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import deep_merge
from .errors import UserInputError

RANDOM_INIT = "random-init"


@dataclass(frozen=True)
class Run:
    """One backbone that goes through the evaluation stages."""

    name: str
    group: str
    method: str
    strategy: str
    dataset_fraction: float | None  # None for the random-init baseline (it sees no data)
    model: dict[str, Any] = field(hash=False)
    pretrain: dict[str, Any] = field(hash=False)

    @property
    def is_baseline(self) -> bool:
        return self.method == RANDOM_INIT

    def info(self) -> dict[str, Any]:
        """What the results table says about this run."""
        return {
            "run": self.name,
            "group": self.group,
            "method": self.method,
            "arch": self.model["arch"],
            "dataset_fraction": self.dataset_fraction,
            "strategy": self.strategy,
        }


def fraction_tag(fraction: float) -> str:
    """0.05 -> '5pct', 1.0 -> '100pct', 0.005 -> '0.5pct' (names of subset files and runs)."""
    return f"{fraction * 100:g}pct"


def _model_key(model: dict[str, Any]) -> str:
    return json.dumps(model, sort_keys=True)


def expand_runs(config: dict[str, Any]) -> dict[str, Run]:
    """Every pretraining run (one per group and fraction) and one random-init run per model."""
    runs: dict[str, Run] = {}
    baselines: dict[str, dict[str, Any]] = {}
    for group, spec in config["runs"].items():
        model = deep_merge(config["model"], spec.get("model", {}))
        pretrain = deep_merge(config["pretrain"], spec.get("pretrain", {}))
        for fraction in spec["fractions"]:
            name = f"{group}-{fraction_tag(fraction)}"
            if name in runs:
                raise UserInputError(f"config: key 'runs.{group}.fractions': {fraction} is listed twice")
            runs[name] = Run(name, group, pretrain["method"], pretrain["strategy"], fraction, model, pretrain)
        baselines.setdefault(_model_key(model), model)
    if config["random_init_baseline"]:
        for model in baselines.values():
            name = _baseline_name(model, runs)
            runs[name] = Run(name, RANDOM_INIT, RANDOM_INIT, "none", None, model, dict(config["pretrain"]))
    return runs


def _baseline_name(model: dict[str, Any], taken: dict[str, Run]) -> str:
    name = f"{RANDOM_INIT}-{model['arch']}"
    if name in taken:  # two models share an architecture name: tell them apart by width
        name = f"{name}-w{model['width']}-{model['stem']}"
    return name


def fractions(config: dict[str, Any]) -> list[float]:
    """All subset fractions the runs use, sorted."""
    return sorted({f for spec in config["runs"].values() for f in spec["fractions"]})


# --- paths --------------------------------------------------------------------------------


def output_dir(config: dict[str, Any]) -> Path:
    return Path(config["output_dir"])


def run_dir(config: dict[str, Any], run: str) -> Path:
    return output_dir(config) / "runs" / run


def subset_file(config: dict[str, Any], fraction: float) -> Path:
    return output_dir(config) / "subsets" / f"{fraction_tag(fraction)}.json"


# --- stage settings -----------------------------------------------------------------------


def pretrain_settings(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Everything the pretraining stage of ``run`` depends on, besides its input files."""
    dataset = config["dataset"]
    return {
        "run": run.info(),
        "model": run.model,
        "pretrain": run.pretrain,
        "data": {k: dataset[k] for k in ("source", "image_size", "in_memory")},
        "augment": config["augment"],
    }


def steps_per_epoch(pretrain: dict[str, Any], num_train: int) -> int:
    """Steps in one epoch: fixed by the *full* training set, whatever the subset (compute-matched)."""
    if pretrain.get("steps_per_epoch"):
        return int(pretrain["steps_per_epoch"])
    return max(1, math.ceil(num_train / pretrain["batch_size"]))


def check_dataset_root(config: dict[str, Any]) -> None:
    """A dataset the pipeline does not generate must already be on disk."""
    dataset = config["dataset"]
    if dataset["source"] != "embedded" and not Path(dataset["root"]).is_dir():
        raise UserInputError(
            f"key 'dataset.root': {dataset['root']} does not exist (source '{dataset['source']}' is read "
            "from disk, never downloaded); set dataset.root, e.g. --config dataset.root=PATH"
        )
