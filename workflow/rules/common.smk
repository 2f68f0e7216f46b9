# Validation, wildcard constraints, paths and input functions shared by every rule.
# The experiment plan (runs, names, the config keys each stage reads) comes from
# siamcollapse.plan, and each stage's code files from siamcollapse.codedeps: the same code the
# DVC pipeline is generated with.

import json
import os
import re
import shlex
import sys
from pathlib import Path

from siamcollapse import plan
from siamcollapse.codedeps import code_digest, stage_modules
from siamcollapse.config import load_yaml, nest_dotted_keys, validate_config
from siamcollapse.errors import UserInputError
from siamcollapse.io import write_text
from siamcollapse.launch import launch_prefix
from siamcollapse.layout import (
    COST_TABLE_FILES,
    FIGURE_NAMES,
    RUN_TABLE_FILES,
    SEGMENT_JOB,
    TABLE_FILES,
    code_stamp,
    run_group_figure,
)
from siamcollapse.preflight import check_experiment


def _workdir_relative(path):
    path = Path(path).absolute()
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def config_files():
    """The experiment's config files, as every stage command is given them."""
    return [_workdir_relative(p) for p in workflow.overwrite_configfiles] or ["config.yaml"]


try:
    for path in config_files():
        load_yaml(path)  # what Snakemake's loader lets pass: a key given twice (the last would win)
    nest_dotted_keys(config)
    validate_config(config, source="config")
    RUNS = check_experiment(config, config_files())
except UserInputError as exc:
    sys.exit(f"siamcollapse: invalid configuration: {exc}")

# The stage commands come from the environment that runs Snakemake (it imports siamcollapse).
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

# Every path comes from siamcollapse.layout (through the plan): TREE is the output directory,
# RUN a run directory with the {run} wildcard for its name.
TREE = plan.output_tree(config)
LOGS = TREE.logs
RUN = TREE.run("{run}")
DATA_ROOT = config["dataset"]["root"]
FRACTION_OF_TAG = {plan.fraction_tag(f): f for f in plan.fractions(config)}


def config_args():
    """`--config FILE...` (and `--set JSON` for --config overrides): every stage loads the same config."""
    args = [arg for path in config_files() for arg in ("--config", path)]
    overrides = dict(workflow.config_settings.config)
    if overrides:
        args += ["--set", json.dumps(overrides, sort_keys=True)]
    return " ".join(map(shlex.quote, args))


CONFIG_ARGS = config_args()


def config_param(wildcards, input):
    """A stage's `--config ...` arguments, as a param Snakemake does not record (a function of
    `input` is a derived param): a job's `settings` param records the values it reads, and which
    file they came from is not among them, so two configs sharing a data root share its data."""
    return CONFIG_ARGS


wildcard_constraints:
    run="|".join(RUNS),
    epoch=r"\d+",
    fraction="|".join(map(str, FRACTION_OF_TAG)),


def resources_of(family, gpus=True):
    """Scheduler resources of a stage family, from the config (never hard-coded in rules).

    Names are Snakemake's and the SLURM executor's: `mem_mb`, `runtime` (minutes), `gpu` (ask
    for GPUs). A job over several nodes is an `mpi` job to the executor (its command starts
    srun itself), one task per node with `gpu` GPUs each.
    """
    values = config["resources"][family]
    resources = {"mem_mb": values["mem_mb"], "runtime": values["runtime"]}
    if not gpus:  # a job of the family that runs no network (the raw-pixel floor)
        return {**resources, "gpu": 0}
    if values["nodes"] == 1:
        return {**resources, "gpu": values["gpu"]}
    return {
        **resources,
        "nodes": values["nodes"],
        "tasks": values["nodes"],
        "mpi": "srun",
        "slurm_extra": f"--ntasks-per-node=1 --gpus-per-node={values['gpu']}",
    }


def launch_prefix_of(family):
    """`siamcollapse`, or the launcher that starts one process per GPU (and srun across nodes)."""
    return launch_prefix(config["resources"][family])


def runs_matching(predicate):
    """A wildcard pattern that matches the runs for which ``predicate(run)`` holds."""
    names = [re.escape(name) for name, run in RUNS.items() if predicate(run)]
    return "|".join(names) or "(?!)"  # (?!) matches nothing: a rule without runs has no jobs


def threads_of(family):
    return config["resources"][family]["threads"]


def write_code_stamp(stage_module):
    """The digest of the stage's source files (siamcollapse.codedeps.code_digest), rewritten only
    when one of them changed: editing one reruns exactly the stages that run it, and each job's
    summary names this one file instead of dozens."""
    stamp, digest = code_stamp(stage_module), code_digest(stage_module)
    if not stamp.is_file() or stamp.read_text() != digest:
        write_text(stamp, digest)
    return [str(stamp)]


# Every stamp is written now, while the Snakefile is read, never by an input function while the DAG
# is built: Snakemake lists a directory once per DAG and trusts that list, so a stamp written after
# its directory was listed reads as a missing input.
CODE_STAMPS = {path.stem: write_code_stamp(path.stem) for path in stage_modules()}


def code_of(stage_module):
    return CODE_STAMPS[stage_module]


def settings_of(stage):
    """Values of the config keys the stage reads (recorded by Snakemake; DVC's `params:`)."""
    return lambda wildcards: plan.stage_settings(config, stage, RUNS.get(wildcards.get("run")))


RUN_DIRS = [plan.run_dir(config, run) for run in RUNS]
TRAINED_GROUPS = plan.trained_groups(RUNS)  # each gets a report page of pretraining curves


def pretrain_inputs(wildcards):
    """Data, code, the subset, and where they apply the teacher and the state continued from."""
    run = RUNS[wildcards.run]
    inputs = {"data": DATA_ROOT, "code": code_of("pretrain")}
    if not run.is_baseline:
        inputs["subset"] = str(plan.subset_file(config, run.dataset_fraction))
    if run.teacher is not None:
        inputs["teacher"] = str(plan.run_dir(config, run.teacher.name).checkpoint)
    start = plan.initial_state(RUNS, run.name, int(wildcards.epoch) if "epoch" in wildcards.keys() else None)
    if start is not None:
        inputs["init_state"] = str(plan.run_dir(config, start[0]).state(start[1]))  # a snapshot hybrids continue
    return inputs


# The paper's augmented probe for backbones; the raw-pixel floor always takes the cached one.
AUGMENTED_PROBE = config["linear_probe"]["mode"] == "augmented"


def probe_inputs(wildcards):
    """Cached features, code, and the checkpoint they came from (none for the raw-pixel floor)."""
    run_dir = plan.run_dir(config, wildcards.run)
    inputs = {"features": [str(f) for f in run_dir.features.files()], "code": code_of("linear_probe")}
    if not RUNS[wildcards.run].is_raw_pixels:
        inputs["checkpoint"] = str(run_dir.checkpoint)
    return inputs


def pretrain_input_args(wildcards, input):
    """The optional inputs as command-line options (`--subset F --teacher F --init-state F`)."""
    options = {"subset": "--subset", "teacher": "--teacher", "init_state": "--init-state"}
    return " ".join(f"{flag} {getattr(input, name)}" for name, flag in options.items() if name in input.keys())


def run_files(name):
    """Every file the workflow writes into run `name`'s directory (but segment states)."""
    run, files = RUNS[name], plan.run_dir(config, name)
    trained = [] if run.is_raw_pixels else [files.checkpoint, files.train_log]
    return [
        *trained,
        files.info,
        files.settings,
        *files.features.files(),
        files.spectrum,
        files.spectrum_summary,
        files.linear_probe,
        files.knn,
    ]


def final_targets():
    """The tables and figures, and every file on the way to them: Snakemake regenerates a missing
    file only if a requested target needs it, so a deleted checkpoint or feature file would
    otherwise go unnoticed behind up-to-date tables."""
    return [
        *[str(TREE.tables / name) for name in TABLE_FILES + COST_TABLE_FILES],
        *[str(TREE.figures / name) for name in FIGURE_NAMES],
        *[str(run_group_figure(TREE.figures, group)) for group in TRAINED_GROUPS],
        *[str(path) for name in RUNS for path in run_files(name)],
        *[str(plan.subset_file(config, fraction)) for fraction in plan.fractions(config)],
    ]


# The paper-shaped tables beside the run table.
PAPER_TABLES = [name for name in TABLE_FILES if name not in RUN_TABLE_FILES]
