"""What a dry-run shows of scaled-out training: one process per GPU, srun across nodes, GPUs asked
for by the training and extraction jobs only."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .conftest import REPO, snakemake

GPU_STAGES = {"pretrain", "pretrain_segment", "distill", "extract_features"}


def dry_run_jobs(workdir: Path, resources: dict) -> dict[str, list[tuple[str, str]]]:
    """Rule -> [(resources line, shell command)] of every job of configs/test.yaml with ``resources``."""
    override = workdir / "resources.yaml"
    override.write_text(yaml.safe_dump({"resources": resources}))
    proc = snakemake(workdir, "-n", "-p", "--configfile", REPO / "configs/test.yaml", override)
    jobs: dict[str, list[tuple[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        command = re.search(r"^Shell command: (.+)$", block, re.MULTILINE)
        if rule and command and command[1] != "None":  # rule all runs nothing
            found = re.search(r"^\s+resources: (.+)$", block, re.MULTILINE)
            jobs.setdefault(rule[1], []).append((found[1] if found else "", command[1]))
    return jobs


def test_gpu_jobs_run_one_process_per_gpu_and_span_nodes_through_srun(workdir):
    jobs = dry_run_jobs(workdir, {"pretrain": {"gpu": 4, "nodes": 2}, "distill": {"gpu": 2},
                                  "extract": {"gpu": 1}})
    for resources, command in jobs["pretrain"] + jobs["pretrain_segment"]:
        assert command.startswith("srun --nodes 2 --ntasks-per-node 1 --kill-on-bad-exit=1 siamcollapse launch "
                                  "--nodes 2 --processes-per-node 4 -- pretrain "), command
        assert "nodes=2" in resources and "mpi=srun" in resources and "--gpus-per-node=4" in resources
    for resources, command in jobs["distill"]:
        assert command.startswith("siamcollapse launch --nodes 1 --processes-per-node 2 -- pretrain "), command
        assert "gpu=2" in resources
    for resources, command in jobs["extract_features"]:
        assert command.startswith("siamcollapse extract-features ") and "gpu=1" in resources
    for rule in set(jobs) - GPU_STAGES:  # data, baselines, probes, kNN, report: no GPU, one process
        for resources, command in jobs[rule]:
            assert command.startswith("siamcollapse ") and "launch" not in command, command
            assert "gpu=0" in resources, (rule, resources)


def test_a_multi_node_job_that_is_not_training_is_refused_before_any_job(workdir):
    override = workdir / "resources.yaml"
    override.write_text(yaml.safe_dump({"resources": {"extract": {"gpu": 1, "nodes": 2}}}))
    proc = snakemake(workdir, "-n", "--configfile", REPO / "configs/test.yaml", override, check=False)
    assert proc.returncode != 0 and "resources.extract.nodes" in proc.stderr
    assert "Traceback" not in proc.stderr
