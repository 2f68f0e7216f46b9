"""The SLURM profile: every entry takes effect, and configs/test.yaml runs through it on a real
one-node SLURM cluster, every job as a SLURM job, with exactly the results of a local run."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from siamcollapse.plan import RAW_PIXELS

from .conftest import REPO, copy_project, in_project
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


@pytest.mark.slurm
def test_test_config_runs_as_slurm_jobs_with_the_results_of_a_local_run(slurm_cluster, local_test_run, tmp_path):
    project = copy_project(tmp_path / "project")
    planned = job_counts(in_project(project, "snakemake", "-n", "--configfile", "configs/test.yaml").stdout)
    planned.pop("total")
    planned.pop("all")  # the target rule has no command: Snakemake itself completes it, no job to submit

    proc = in_project(project, "snakemake", *USE_PROFILE, "--configfile", "configs/test.yaml", *NO_ACCOUNTING, *FAST,
                      timeout=900)
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

    # The same results as the local run: the tables and every checkpoint's weights.
    local = pd.read_csv(local_test_run / "results/test/tables/runs.csv").sort_values("run", ignore_index=True)
    slurm = pd.read_csv(project / "results/test/tables/runs.csv").sort_values("run", ignore_index=True)
    pd.testing.assert_frame_equal(slurm, local, check_exact=True)
    assert fingerprints(project) == fingerprints(local_test_run)
    assert len(fingerprints(project)) == (local["method"] != RAW_PIXELS).sum()  # every network's checkpoint
