"""The SLURM profile: every entry takes effect; and the SLURM run of configs/test.yaml (one run's
chain, through every rule but those of LEFT_OUT_RULES) on a real one-node SLURM cluster, which
tests/workflow/test_shared_run.py starts beside the shared local run and compares with it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import torch
import yaml

from .conftest import BIN, REPO, copy_project, in_project, tool_env
from .slurm_cluster import SlurmCluster
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


class SlurmRun:
    """configs/test.yaml less LEFT_OUT_* (``slurm_test_config``) through the SLURM profile, in a
    project copy at ``project``, on a one-node cluster: started in the background (`start`), so
    that its jobs run while the same pytest worker makes the local run, and awaited (`wait`)."""

    def __init__(self, project: Path) -> None:
        self.project = copy_project(project)
        self.config = slurm_test_config(self.project)
        self.cluster = SlurmCluster()
        self.process: subprocess.Popen | None = None
        # jobs per rule, as the dry-runs of `start` plan them (this config's, configs/test.yaml's)
        self.planned: dict[str, int] = {}
        self.planned_by_test_config: dict[str, int] = {}
        self._output = self.project.parent / "snakemake-slurm.out"

    def start(self) -> None:
        """Plan both configs (dry-runs), start the cluster, then submit the run without waiting."""
        self.planned = job_counts(in_project(self.project, "snakemake", "-n", "--configfile", self.config).stdout)
        self.planned_by_test_config = job_counts(in_project(self.project, "snakemake", "-n", "--configfile",
                                                            "configs/test.yaml").stdout)
        self.cluster.start()
        with self._output.open("w") as output:
            self.process = subprocess.Popen(
                [str(BIN / "snakemake"), *USE_PROFILE, "--configfile", self.config, *NO_ACCOUNTING, *FAST],
                cwd=self.project, env=tool_env(), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)

    def wait(self, timeout_s: float) -> str:
        """Snakemake's output once it has finished; an error with its tail if it failed."""
        assert self.process is not None, "the SLURM run was never started"
        returncode = self.process.wait(timeout=timeout_s)
        output = self._output.read_text()
        assert returncode == 0, f"snakemake (SLURM) failed ({returncode}):\n{output[-3000:]}\n{self.cluster.logs()}"
        return output

    def stop(self) -> None:
        """Stop Snakemake (by PID) if it still runs, then the cluster (its jobs, its daemons)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.cluster.stop()
