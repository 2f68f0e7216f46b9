# Validation, wildcard constraints, paths and input functions shared by every rule.
# The experiment plan (runs, names, the config keys each stage reads) comes from
# siamcollapse.plan, and each stage's code files from siamcollapse.codedeps: the same code the
# DVC pipeline is generated with.

import json
import os
import shlex
import sys
from pathlib import Path

from siamcollapse import plan
from siamcollapse.codedeps import stage_code
from siamcollapse.config import nest_dotted_keys, validate_config
from siamcollapse.errors import UserInputError

try:
    nest_dotted_keys(config)
    validate_config(config, source="config")
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


def _workdir_relative(path):
    path = Path(path).absolute()
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def config_args():
    """`--config FILE...` (and `--set JSON` for --config overrides): every stage loads the same config."""
    files = [_workdir_relative(p) for p in workflow.overwrite_configfiles] or ["config.yaml"]
    args = [arg for path in files for arg in ("--config", path)]
    overrides = dict(workflow.config_settings.config)
    if overrides:
        args += ["--set", json.dumps(overrides, sort_keys=True)]
    return " ".join(map(shlex.quote, args))


CONFIG_ARGS = config_args()


wildcard_constraints:
    run="|".join(RUNS),
    fraction="|".join(map(str, FRACTION_OF_TAG)),


def resources_of(family):
    """Scheduler resources of a stage family, from the config (never hard-coded in rules)."""
    return {k: v for k, v in config["resources"][family].items() if k != "threads"}


def threads_of(family):
    return config["resources"][family]["threads"]


def code_of(stage_module):
    """The stage's source files: editing one reruns exactly the stages that run it."""
    return [str(path) for path in stage_code(stage_module)]


def settings_of(stage):
    """Values of the config keys the stage reads (recorded by Snakemake; DVC's `params:`)."""
    return lambda wildcards: plan.stage_settings(config, stage, RUNS.get(wildcards.get("run")))


def run_path(run, name):
    return str(plan.run_dir(config, run) / name)


def run_files(name):
    """The file ``name`` of every run directory (inputs of the results rules)."""
    return [run_path(run, name) for run in RUNS]


def pretrain_inputs(wildcards):
    run = RUNS[wildcards.run]
    inputs = {"data": DATA_ROOT, "code": code_of("pretrain")}
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
