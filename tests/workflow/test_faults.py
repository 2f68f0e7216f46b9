"""Fault injection: the whole engine (Snakemake, then DVC) and the stage it is running are
SIGKILLed at random points of a tiny chain, three times, as a crashed node or an OOM killer
would; after the documented recovery the results equal those of an unbroken run.

Minutes long, so `make test-faults` runs it (CI runs it after `make test`)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from siamcollapse.layout import RunDir

from .conftest import BIN, copy_project, in_project
from .test_dvc import CUT_LOCK

pytestmark = pytest.mark.faults

CONFIG = "configs/test.yaml"
RUNS = ("mocov3-resnet18-100pct", "distill-mocov3-to-resnet18")  # a teacher and its student
KILLS = 3
SEED = 20261202  # the kill times are random, and the same in every session


def run_dirs(project: Path) -> list[RunDir]:
    return [RunDir(project / "results" / "test" / "runs" / run) for run in RUNS]


def results(project: Path) -> dict[str, object]:
    """What the chain computed: each run's weights (fingerprint), probe and kNN results."""
    found: dict[str, object] = {}
    for run in run_dirs(project):
        found[f"{run.path.name} weights"] = torch.load(run.checkpoint, map_location="cpu", weights_only=False)["fingerprint"]
        found[f"{run.path.name} linear"] = json.loads(run.linear_probe.read_text())
        found[f"{run.path.name} knn"] = json.loads(run.knn.read_text())
    return found


def targets(project: Path) -> list[str]:
    return [str(path.relative_to(project)) for run in run_dirs(project) for path in (run.linear_probe, run.knn)]


def kill_at_random_points(command: list[str], project: Path, rng: random.Random, window: tuple[float, float]) -> list[str]:
    """Start ``command`` KILLS times, each time SIGKILLing its whole process group after a random
    delay in ``window`` seconds (unless it finished first); what happened each time."""
    happened = []
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    for _ in range(KILLS):
        delay = rng.uniform(*window)
        proc = subprocess.Popen(command, cwd=project, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
            happened.append(f"finished before {delay:.1f} s")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            happened.append(f"killed at {delay:.1f} s")
        time.sleep(0.2)
    return happened


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory) -> Path:
    """A project in which the chain ran once without faults (Snakemake)."""
    reference = copy_project(tmp_path_factory.mktemp("faults") / "reference")
    in_project(reference, "snakemake", *targets(reference), "--cores", "2", "--configfile", CONFIG)
    return reference


def test_snakemake_killed_three_times_then_unlocked_and_rerun_gives_the_unbroken_results(unbroken, tmp_path):
    project = copy_project(tmp_path / "project")
    command = [str(BIN / "snakemake"), *targets(project), "--cores", "2", "--configfile", CONFIG]
    happened = kill_at_random_points(command, project, random.Random(SEED), (3.0, 30.0))
    assert any(event.startswith("killed") for event in happened), happened
    # the recovery docs/pipeline.md gives: unlock, then run again (rerun-incomplete is in the profile)
    in_project(project, "snakemake", "--unlock", "--configfile", CONFIG)
    in_project(project, "snakemake", *command[1:])
    assert results(project) == results(unbroken), happened


def test_dvc_repro_killed_three_times_then_rerun_gives_the_unbroken_results(unbroken, tmp_path):
    project = copy_project(tmp_path / "project")
    in_project(project, "siamcollapse", "dvc-yaml", "--configfile", CONFIG)
    pipeline = "workflow/dvc/test/dvc.yaml"
    stages = [f"{pipeline}:{stage}-{run}" for run in RUNS for stage in ("linear_probe", "knn")]
    happened = kill_at_random_points([str(BIN / "dvc"), "repro", *stages], project, random.Random(SEED + 1), (3.0, 30.0))
    assert any(event.startswith("killed") for event in happened), happened
    rerun = in_project(project, "dvc", "repro", *stages, check=False)
    if rerun.returncode != 0 and CUT_LOCK.search(rerun.stdout + rerun.stderr):
        # killed while DVC rewrote dvc.lock (in place): the recovery docs/pipeline.md gives
        (project / pipeline).with_name("dvc.lock").unlink()
        happened.append("dvc.lock cut short: deleted, as documented")
        rerun = in_project(project, "dvc", "repro", *stages, check=False)
    assert rerun.returncode == 0, (happened, rerun.stdout[-2000:], rerun.stderr[-2000:])
    assert results(project) == results(unbroken), happened
