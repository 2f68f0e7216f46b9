"""The experiment plan: which runs a validated config asks for, and each stage's settings.

Both workflow engines read the DAG from here, so a run's name, directory and settings are
computed in one place. ``stage_config_keys`` names the config keys each stage reads: Snakemake
records their values as rule params and DVC declares them as stage ``params:``, so a change of
one key reruns only the stages (and runs) that read it, in either engine.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import deep_merge, get_dotted
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


def group_model(config: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The backbone of a run group: the config's model with the group's overrides."""
    return deep_merge(config["model"], spec.get("model", {}))


def expand_runs(config: dict[str, Any]) -> dict[str, Run]:
    """Every pretraining run (one per group and fraction) and one random-init run per model."""
    runs: dict[str, Run] = {}
    baselines: dict[str, dict[str, Any]] = {}
    for group, spec in config["runs"].items():
        model = group_model(config, spec)
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
            runs[name] = Run(name, RANDOM_INIT, RANDOM_INIT, "none", None, model, {"seed": config["pretrain"]["seed"]})
    return runs


def _baseline_name(model: dict[str, Any], taken: dict[str, Run]) -> str:
    name = f"{RANDOM_INIT}-{model['arch']}"
    if name in taken:  # two models share an architecture name: tell them apart by width
        name = f"{name}-w{model['width']}-{model['stem']}"
    return name


def find_run(config: dict[str, Any], name: str) -> Run:
    runs = expand_runs(config)
    if name not in runs:
        raise UserInputError(
            f"run '{name}' is not in this config (its runs: {', '.join(runs)}); if dvc repro ran this, "
            "dvc.yaml is out of date: regenerate it with `siamcollapse dvc-yaml`"
        )
    return runs[name]


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


# Config keys (dotted, at the granularity the stage reads them) of the stages that do not
# depend on the run; tables and figures read only the runs' result files.
STAGE_CONFIG_KEYS: dict[str, list[str]] = {
    "prepare_data": ["embedded"],
    "make_subset": ["dataset.source", "subsets"],
    "extract_features": ["dataset", "evaluation"],
    "linear_probe": ["linear_probe"],
    "knn": ["knn"],
    "collect_tables": [],
    "plot_figures": [],
}


def stage_config_keys(config: dict[str, Any], stage: str, run: Run | None = None) -> list[str]:
    """The config keys ``stage`` (of ``run``, for pretraining) reads: its DVC params."""
    if stage != "pretrain":
        return list(STAGE_CONFIG_KEYS[stage])
    if run is None:
        raise ValueError("the pretrain stage's keys depend on the run")
    if run.is_baseline:  # an untrained backbone: only its architecture and the init seed matter
        groups = [g for g, spec in config["runs"].items() if group_model(config, spec) == run.model]
        return ["model", "pretrain.seed", *[f"runs.{g}.model" for g in groups if "model" in config["runs"][g]]]
    overrides = [f"runs.{run.group}.{section}" for section in ("model", "pretrain") if section in config["runs"][run.group]]
    return ["dataset", "model", "pretrain", "augment", *overrides]


def stage_settings(config: dict[str, Any], stage: str, run: Run | None = None) -> dict[str, Any]:
    """``{key: resolved value}`` of every key the stage reads (Snakemake's rule params)."""
    return {key: get_dotted(config, key) for key in stage_config_keys(config, stage, run)}


def pretrain_settings(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Everything the pretraining stage of ``run`` depends on, besides its input files."""
    if run.is_baseline:
        return {"run": run.info(), "model": run.model, "pretrain": run.pretrain}
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
