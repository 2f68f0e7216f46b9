"""Two training processes (gloo, through `siamcollapse launch`, i.e. accelerate launch) compute
what one process computes on the same global batch: same loss trajectory, same weights."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
import torch

from siamcollapse.config import load_experiment
from siamcollapse.layout import OutputTree
from siamcollapse.metrics import SPECTRUM_METRICS

from .test_stages import SIAMCOLLAPSE, SIMSIAM_AND_MOCOV3, pretrain_args, run_cli, whole_subset_experiment
from .test_tracking import tensorboard_events

OVERRIDES = {
    "pretrain": {"epochs": 2, "steps_per_epoch": 3, "batch_size": 8},
    **SIMSIAM_AND_MOCOV3,
    "tracking": {"log_with": ["tensorboard"]},  # only the main process may log
}


@pytest.fixture(scope="module")
def experiment(tiny_dataset: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    return whole_subset_experiment(tiny_dataset, tmp_path_factory.mktemp("multiprocess"), OVERRIDES)


def logged(run_dir: Path, column: str) -> list[float]:
    with open(run_dir / "train_log.csv") as handle:
        return [float(row[column]) for row in csv.DictReader(handle)]


def losses(run_dir: Path) -> list[float]:
    return logged(run_dir, "loss")


def checkpoint(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)


@pytest.mark.parametrize("run", ["simsiam-100pct", "moco-100pct"])
def test_two_processes_train_the_weights_one_process_trains(experiment, tiny_dataset, run):
    config, subset, out = experiment
    args = [str(a) for a in pretrain_args(config, run, tiny_dataset, subset, out / f"{run}-2proc")]
    proc = subprocess.run([str(SIAMCOLLAPSE), "launch", "--processes-per-node", "2", "--", *args,
                           "--log", str(out / f"{run}-2proc.log")], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "accelerate launch --multi_gpu --num_machines 1 --num_processes 2" in proc.stdout
    assert "2 process(es) on cpu" in (out / f"{run}-2proc.log").read_text()
    # One writer (the main process): every step once, the loss averaged over both processes.
    logdir = OutputTree(Path(load_experiment([config])["output_dir"])).tracking.tensorboard(run)
    assert len([p for p in logdir.glob("events.out.tfevents.*")]) == 1
    scalars, _ = tensorboard_events(logdir)
    assert [step for step, _ in scalars["train/loss"]] == list(range(1, 7))
    per_epoch = [sum(v for s, v in scalars["train/loss"] if (e - 1) * 3 < s <= e * 3) / 3 for e in (1, 2)]
    assert per_epoch == pytest.approx(losses(out / f"{run}-2proc"), abs=2e-5)
    assert run_cli(*pretrain_args(config, run, tiny_dataset, subset, out / f"{run}-1proc")) == 0

    one, two = out / f"{run}-1proc", out / f"{run}-2proc"
    assert len(losses(one)) == 2 and losses(one)[0] != losses(one)[1]  # it trained
    assert losses(two) == pytest.approx(losses(one), rel=1e-4, abs=1e-5)
    for metric in SPECTRUM_METRICS:  # tracked every epoch, by every process on the same sample
        assert len(logged(one, metric)) == 2
        assert logged(two, metric) == pytest.approx(logged(one, metric), rel=1e-3), metric
    one_state, two_state = checkpoint(one)["backbone"], checkpoint(two)["backbone"]
    assert one_state.keys() == two_state.keys()
    for name, value in one_state.items():  # batch-norm running statistics included
        torch.testing.assert_close(two_state[name], value, rtol=1e-4, atol=1e-4, msg=name)
