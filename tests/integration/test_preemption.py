"""A pretraining stage killed mid-run (SIGKILL: node failure) or asked to stop (SIGTERM: SLURM
preemption or time limit) resumes when rerun and ends with the weights of an unbroken run."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from siamcollapse.errors import TrainingInterrupted
from siamcollapse.layout import RunDir
from siamcollapse.metrics import SPECTRUM_METRICS

from .test_stages import SIAMCOLLAPSE, SIMSIAM_AND_MOCOV3, pretrain_args, run_cli, whole_subset_experiment

EPOCHS = 2
OVERRIDES = {
    # slow enough (a second or more per epoch here) to be caught mid-run, with a line per step
    "pretrain": {"epochs": EPOCHS, "steps_per_epoch": 20, "batch_size": 8, "log_every": 1},
    **SIMSIAM_AND_MOCOV3,
}


@pytest.fixture(scope="module")
def experiment(tiny_dataset: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    return whole_subset_experiment(tiny_dataset, tmp_path_factory.mktemp("preemption"), OVERRIDES)


def command(experiment, tiny_dataset, run: str, out_dir: Path, log: Path) -> list[str]:
    config, subset, _ = experiment
    return [str(a) for a in pretrain_args(config, run, tiny_dataset, subset, out_dir)] + ["--log", str(log)]


def start_and_signal(argv: list[str], log: Path, wait_for: str, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Run `siamcollapse` with ``argv``; send ``sig`` once ``wait_for`` appears in its log."""
    process = subprocess.Popen([str(SIAMCOLLAPSE), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while not (log.is_file() and wait_for in log.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"never saw {wait_for!r} before the stage ended or 120 s passed")
            time.sleep(0.02)
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def log_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "train_log.csv") as handle:
        return list(csv.DictReader(handle))


def assert_same_training(resumed: Path, straight: Path) -> None:
    a = torch.load(resumed / "checkpoint.pt", weights_only=False)["backbone"]
    b = torch.load(straight / "checkpoint.pt", weights_only=False)["backbone"]
    for name, value in b.items():
        torch.testing.assert_close(a[name], value, rtol=0, atol=1e-6, msg=name)
    same = ["epoch", "steps", "loss", "lr", "z_std", *SPECTRUM_METRICS]  # not the timings
    assert all(row["rankme"] for row in log_rows(straight))  # tracked on every epoch
    assert [[row[k] for k in same] for row in log_rows(resumed)] == [[row[k] for k in same] for row in log_rows(straight)]
    assert not RunDir(resumed).resume.exists()


@pytest.fixture(scope="module")
def straight(experiment, tiny_dataset) -> dict[str, Path]:
    """Every run trained without interruption (in this process)."""
    config, subset, out = experiment
    runs = {}
    for run in ("simsiam-100pct", "moco-100pct"):
        runs[run] = out / f"{run}-straight"
        assert run_cli(*pretrain_args(config, run, tiny_dataset, subset, runs[run])) == 0
    return runs


def test_sigkill_after_an_epoch_resumes_from_its_state(experiment, tiny_dataset, straight, tmp_path):
    run, run_dir = "simsiam-100pct", tmp_path / "killed"
    killed = start_and_signal(command(experiment, tiny_dataset, run, run_dir, tmp_path / "killed.log"),
                              tmp_path / "killed.log", f"epoch 1/{EPOCHS} ", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert RunDir(run_dir).resume.exists() and not (run_dir / "checkpoint.pt").exists()

    assert run_cli(*command(experiment, tiny_dataset, run, run_dir, tmp_path / "2.log")) == 0  # the rerun
    log = (tmp_path / "2.log").read_text()
    assert f"continuing {run} after epoch " in log and f"epoch 1/{EPOCHS} " not in log  # resumed, not restarted
    assert_same_training(run_dir, straight[run])


def test_sigterm_saves_the_step_it_reached_and_a_rerun_continues_there(experiment, tiny_dataset, straight, tmp_path):
    run, run_dir = "moco-100pct", tmp_path / "preempted"
    stopped = start_and_signal(command(experiment, tiny_dataset, run, run_dir, tmp_path / "1.log"),
                               tmp_path / "1.log", "  epoch 2 step 5/", signal.SIGTERM)
    assert stopped.returncode == TrainingInterrupted.exit_code, stopped.stderr[-3000:]
    assert "stopped by SIGTERM at epoch 2 step " in stopped.stderr and "rerun the same command" in stopped.stderr
    state = torch.load(RunDir(run_dir).resume, weights_only=False)
    progress = state["epoch_progress"]
    assert state["epoch"] == 1 and progress["epoch"] == 1 and 5 <= progress["step"] < 20
    assert not (run_dir / "checkpoint.pt").exists()

    assert run_cli(*command(experiment, tiny_dataset, run, run_dir, tmp_path / "2.log")) == 0
    log = (tmp_path / "2.log").read_text()
    assert f"continuing {run} after epoch 2 step {progress['step']}" in log
    assert f"  epoch 2 step {progress['step']}/" not in log and f"  epoch 2 step {progress['step'] + 1}/" in log
    assert_same_training(run_dir, straight[run])
