"""The SLURM profile: every entry takes effect, and configs/test.yaml (one run's chain, through
every rule but those of LEFT_OUT_RULES) runs through it on a real one-node SLURM cluster, every
job as a SLURM job, with exactly the results of a local run."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from siamcollapse.plan import RAW_PIXELS

from .conftest import REPO, copy_project, in_project, runs_of_test_config
from .slurm_cluster import ClusterUnavailable, SlurmCluster, missing_requirement
from .test_snakemake import job_counts

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
USE_PROFILE = ("--workflow-profile", "profiles/slurm")  # as the README says (see the profile's header)
# The test cluster has no accounting database (slurmdbd): job states come from squeue and no
# account is given. Settings of such clusters, not of the profile.
NO_ACCOUNTING = ("--slurm-status-command", "squeue", "--slurm-no-account")
# Test-only: check job states every second instead of after 40 s and more (the plugin's pace,
# right for a real cluster, would make this test wait minutes), and keep the SLURM logs of
# successful jobs, which the plugin deletes by default, as evidence.
FAST = ("--slurm-init-seconds-before-status-checks", "1", "--slurm-keep-successful-logs")
# What of configs/test.yaml the SLURM run leaves out, to keep the suite in its time budget: run
# groups whose jobs run the same rules as the rest (a second seed); the hybrid and its
# single-pass run, which add pretrain_segment, a pretrain command with pretrain's resources; the
# distilled student, whose rule runs the same pretrain command in the distill family (the
# scale-out dry-runs check every family's SLURM resources) and would add a level of jobs, each
# level costing a status-check interval; and the floors, whose rules (random_init,
# extract_raw_pixels) are commands of the stage modules that run here, in resource families
# (default, extract) that other jobs here use. What is left is one run's chain through every other
# rule. The shared local run covers them all.
LEFT_OUT_GROUPS = ("simsiam-resnet18", "simsiam-resnet18-decaypred", "simsiam-resnet18-singlepass",
                   "simsiam-resnet18-hybrid")
LEFT_OUT_DISTILLATIONS = ("distill-mocov3-to-resnet18",)
LEFT_OUT_FLOORS = {"random_init_baseline": False, "raw_pixels": {"enabled": False}}
LEFT_OUT_RULES = {"pretrain_segment", "distill", "random_init", "extract_raw_pixels"}
# Collected first (tests/conftest.py), as one unit of a parallel session (`--dist loadfile`): its
# worker starts the cluster at once, and the test reads the shared local run only after its own
# SLURM run, by when another worker has made it.
pytestmark = pytest.mark.long_chain
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.")


def test_every_entry_of_the_slurm_profile_takes_effect(tmp_path, monkeypatch):
    """Used as documented, no other profile (such as profiles/default) overrides an entry of it."""
    from snakemake.cli import parse_args
    from snakemake.settings.types import MaxJobsPerTimespan

    entries = yaml.safe_load(PROFILE.read_text())
    assert entries["executor"] == "slurm" and entries["retries"] > 0
    assert "default-resources" not in entries  # the rules' resources come from the config
    monkeypatch.chdir(copy_project(tmp_path / "project"))
    _, args = parse_args([*USE_PROFILE, "--snakefile", "Snakefile", "-n"])
    for key, value in entries.items():
        parsed = getattr(args, key.replace("-", "_"))
        if isinstance(parsed, MaxJobsPerTimespan):
            parsed, value = vars(parsed), vars(MaxJobsPerTimespan.parse_choice(value))
        assert parsed == value, key


@pytest.fixture(scope="module")
def slurm_cluster():
    """A one-node SLURM cluster for this module's tests, or a skip that says why there is none."""
    reason = missing_requirement()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster()
    try:
        cluster.start()
    except (ClusterUnavailable, OSError) as exc:
        cluster.stop()
        pytest.skip(f"could not start a SLURM cluster: {exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


def fingerprints(project: Path) -> dict[str, str]:
    """The backbone fingerprint of every run's checkpoint."""
    return {path.parent.name: torch.load(path, map_location="cpu", weights_only=False)["fingerprint"]
            for path in sorted((project / "results/test/runs").glob("*/checkpoint.pt"))}


def slurm_test_config(project: Path) -> str:
    """configs/test.yaml without what LEFT_OUT_* names, written into ``project``."""
    config = yaml.safe_load((project / "configs/test.yaml").read_text())
    for group in LEFT_OUT_GROUPS:
        del config["runs"][group]
    for student in LEFT_OUT_DISTILLATIONS:
        del config["distillations"][student]
    config.update(LEFT_OUT_FLOORS)
    path = project / "configs/test-slurm.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path.relative_to(project).as_posix()


@pytest.mark.slurm
def test_test_config_runs_as_slurm_jobs_with_the_results_of_a_local_run(slurm_cluster, request, tmp_path):
    project = copy_project(tmp_path / "project")
    config = slurm_test_config(project)
    planned = job_counts(in_project(project, "snakemake", "-n", "--configfile", config).stdout)
    planned.pop("total")
    planned.pop("all")  # the target rule has no command: Snakemake itself completes it, no job to submit
    assert set(planned) == set(job_counts(in_project(project, "snakemake", "-n", "--configfile",
                                                     "configs/test.yaml").stdout)) - {"total", "all", *LEFT_OUT_RULES}

    proc = in_project(project, "snakemake", *USE_PROFILE, "--configfile", config, *NO_ACCOUNTING, *FAST, timeout=900)
    output = proc.stdout + proc.stderr

    # Every job was a SLURM job: what Snakemake submitted is what the controller ran and
    # completed, one job per planned job (no retries), each with its SLURM log.
    submitted = {slurm_id: Path(log) for _, slurm_id, log in SUBMITTED.findall(output)}
    assert len(submitted) == sum(planned.values()), output[-3000:]
    names = {job["name"] for job in slurm_cluster.jobs() if job["id"] in submitted}
    assert len(names) == 1  # the executor names every job of a run by the run's id
    ran = {job["id"]: job for job in slurm_cluster.jobs() if job["name"] in names}
    assert set(ran) == set(submitted)
    assert {job["state"] for job in ran.values()} == {"COMPLETED"}, ran
    comments = [job["comment"] for job in ran.values()]  # "rule_<rule>[_wildcards_<values>]"
    assert len(set(comments)) == len(comments)
    rules = Counter(re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", comment)[1] for comment in comments)
    assert rules == planned
    for log in submitted.values():
        assert log.is_file() and log.stat().st_size > 0, log
        assert log.is_relative_to(project / ".snakemake" / "slurm_logs")

    # The same results as the local run of configs/test.yaml: its rows of the tables and every
    # checkpoint's weights.
    local_run = request.getfixturevalue("local_test_run")  # after the SLURM run: it may still be in the making
    slurm = pd.read_csv(project / "results/test/tables/runs.csv").sort_values("run", ignore_index=True)
    assert set(slurm["run"]) == set(runs_of_test_config(project / config))
    local = pd.read_csv(local_run / "results/test/tables/runs.csv")
    local = local[local["run"].isin(slurm["run"])].sort_values("run", ignore_index=True)
    floors_only = sorted(set(local) - set(slurm))  # columns only the floors fill (the pixel side)
    assert local[floors_only].isna().all().all(), floors_only
    pd.testing.assert_frame_equal(slurm, local[list(slurm.columns)], check_exact=True, check_dtype=False)  # ints, as floats beside the floors' NaN
    slurm_weights, local_weights = fingerprints(project), fingerprints(local_run)
    assert slurm_weights == {run: local_weights[run] for run in slurm_weights}
    assert len(slurm_weights) == (slurm["method"] != RAW_PIXELS).sum()  # every network's checkpoint
