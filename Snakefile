# siamcollapse: partial dimensional collapse in non-contrastive Siamese SSL (Li, Efros, Pathak 2022).
#
#   snakemake --cores all                              # the embedded default experiment (config.yaml)
#   snakemake --cores all --configfile configs/X.yaml  # another experiment
#   snakemake --report results/report.html             # HTML report of figures and tables
#
# The DAG: dataset -> nested subsets -> pretraining (+ random-init baseline) -> features and
# spectrum -> linear probe, kNN -> tables, figures. Every rule shells out to one
# `siamcollapse <stage> --config FILE ...` command; the stage code lives in src/siamcollapse.
# dvc.yaml is generated from this workflow (`siamcollapse dvc-yaml`): same commands and outputs.

from snakemake.utils import min_version

min_version("9.0")


# config.yaml is the default experiment; `--configfile X` replaces it (never merges into it,
# so every config file describes its whole experiment on top of the schema's defaults).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# The stage commands are found on PATH (the environment that has siamcollapse installed).
envvars:
    "PATH",


# With `--software-deployment-method apptainer` (plus --apptainer-args="--nv" for GPUs) every rule
# runs inside the project's Apptainer image, built from containers/siamcollapse.def (itself from
# the Docker image of containers/Dockerfile; README, Containers); without it, in the current
# environment and no image is needed. The path is next to this Snakefile whatever the working
# directory, and its version follows pyproject.toml (tests/unit/test_containers.py).
container: f"{workflow.basedir}/containers/siamcollapse-0.1.0.sif"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_targets(),
