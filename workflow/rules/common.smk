# Validation, wildcard constraints, paths and input functions shared by every rule.
# The experiment plan (runs, names, per-stage settings) comes from siamcollapse.plan, the same
# code the DVC pipeline is built from.

import json
import os
import sys
from pathlib import Path

from siamcollapse import plan
from siamcollapse.config import nest_dotted_keys, validate_config
from siamcollapse.errors import UserInputError

try:
    nest_dotted_keys(config)  # `--config dataset.root=PATH` overrides one nested key
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml", source="config")
    RUNS = plan.expand_runs(config)
    plan.check_dataset_root(config)
except UserInputError as exc:
    sys.exit(f"siamcollapse: invalid configuration: {exc}")

# The stage commands come from the environment that runs Snakemake (it imports siamcollapse).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

OUT = plan.output_dir(config)
LOGS = OUT / "logs"
DATA_ROOT = config["dataset"]["root"]
FRACTION_OF_TAG = {plan.fraction_tag(f): f for f in plan.fractions(config)}


wildcard_constraints:
    run="|".join(RUNS),
    fraction="|".join(map(str, FRACTION_OF_TAG)),


def resources_of(family):
    """Scheduler resources of a stage family, from the config (never hard-coded in rules)."""
    return {k: v for k, v in config["resources"][family].items() if k != "threads"}


def threads_of(family):
    return config["resources"][family]["threads"]


def run_path(run, name):
    return str(plan.run_dir(config, run) / name)


def run_files(name):
    """The file ``name`` of every run directory (inputs of the results rules)."""
    return [run_path(run, name) for run in RUNS]


def pretrain_inputs(wildcards):
    run = RUNS[wildcards.run]
    inputs = {"data": DATA_ROOT}
    if not run.is_baseline:
        inputs["subset"] = str(plan.subset_file(config, run.dataset_fraction))
    return inputs


def pretrain_subset_arg(wildcards, input):
    return f"--subset {input.subset}" if "subset" in input.keys() else ""


def final_targets():
    return [
        str(OUT / "tables" / "runs.csv"),
        str(OUT / "tables" / "runs.md"),
        *[str(OUT / "figures" / name) for name in FIGURES],
    ]


FIGURES = [
    "singular_values.png",
    "normalized_spectrum.png",
    "cumulative_explained_variance.png",
    "auc_vs_fraction.png",
    "auc_vs_linear_top1.png",
]
