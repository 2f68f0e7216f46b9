"""The GPU path as shipped (bf16 autocast, channels_last, torch.compile with inductor, images
resident on the device): SimSiam, MoCo-v3 and BYOL train to finite losses, a SIGTERM'd run
resumes to the unbroken run's weights within bf16's tolerance, and steps add no host syncs
beyond the periodic checks. `make test-gpu` runs these on a machine with CUDA; `make test`
leaves them out (marker `gpu`)."""

from __future__ import annotations

import csv
import math
import signal
import warnings
from pathlib import Path

import pytest
import torch

from siamcollapse.errors import TrainingInterrupted
from siamcollapse.layout import RunDir
from siamcollapse.training import loop
from siamcollapse.training.checkpoint import load_backbone

from .test_preemption import command, start_and_signal
from .test_stages import TINY_MOCOV3, pretrain_args, run_cli, whole_subset_experiment

pytestmark = pytest.mark.gpu
STEPS = 3 * loop.CHECK_EVERY  # a SIGTERM stops at the next check: room for one mid-epoch
OVERRIDES = {
    "pretrain": {"epochs": 2, "steps_per_epoch": STEPS, "batch_size": 32, "log_every": 1, "track_every": 0},
    "methods": {"mocov3": TINY_MOCOV3, "byol": {"proj_hidden_dim": 16, "proj_dim": 8, "pred_dim": 16}},
    "runs": {"simsiam": {"fractions": [1.0]},
             "moco": {"fractions": [1.0], "pretrain": {"method": "mocov3", "warmup_epochs": 1}},
             "byol": {"fractions": [1.0], "pretrain": {"method": "byol"}}},
}
BF16_TOLERANCE = {"rtol": 2e-2, "atol": 2e-2}  # bf16 keeps 8 bits of mantissa; compiled kernels may reorder sums


@pytest.fixture(scope="module", autouse=True)
def cuda() -> None:
    if not torch.cuda.is_available():
        pytest.fail("the GPU tests need a CUDA device (make test-gpu); make test leaves them out")


@pytest.fixture(scope="module")
def experiment(tiny_dataset: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    return whole_subset_experiment(tiny_dataset, tmp_path_factory.mktemp("gpu"), OVERRIDES)


def losses(run_dir: Path) -> list[float]:
    with open(RunDir(run_dir).train_log) as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("run", ["simsiam-100pct", "moco-100pct", "byol-100pct"])
def test_each_method_trains_compiled_in_bf16_to_finite_losses(experiment, tiny_dataset, tmp_path, capsys, run):
    config, subset, _ = experiment
    assert run_cli(*pretrain_args(config, run, tiny_dataset, subset, tmp_path / run)) == 0
    assert "on cuda" in capsys.readouterr().out.replace("cuda:0", "cuda")
    assert len(losses(tmp_path / run)) == 2 and all(math.isfinite(x) for x in losses(tmp_path / run))
    backbone, _ = load_backbone(RunDir(tmp_path / run).checkpoint)
    assert all(torch.isfinite(value).all() for value in backbone.state_dict().values() if value.is_floating_point())


def test_the_step_is_compiled_on_cuda_by_default(experiment, tiny_dataset, tmp_path, capsys):
    config, subset, _ = experiment
    assert run_cli(*pretrain_args(config, "simsiam-100pct", tiny_dataset, subset, tmp_path / "run")) == 0
    assert f"compiled ({loop.COMPILE_BACKEND})" in capsys.readouterr().out


def test_sigterm_mid_epoch_resumes_to_the_unbroken_weights_within_bf16_tolerance(experiment, tiny_dataset, tmp_path):
    config, subset, _ = experiment
    run = "moco-100pct"
    straight = tmp_path / "straight"
    assert run_cli(*pretrain_args(config, run, tiny_dataset, subset, straight)) == 0
    resumed = tmp_path / "resumed"
    stopped = start_and_signal(command(experiment, tiny_dataset, run, resumed, tmp_path / "1.log"),
                               tmp_path / "1.log", "  epoch 2 step 5/", signal.SIGTERM)
    assert stopped.returncode == TrainingInterrupted.exit_code, stopped.stderr[-3000:]
    assert run_cli(*command(experiment, tiny_dataset, run, resumed, tmp_path / "2.log")) == 0
    assert "continuing moco-100pct after epoch 2 step " in (tmp_path / "2.log").read_text()
    a, _ = load_backbone(RunDir(resumed).checkpoint)
    b, _ = load_backbone(RunDir(straight).checkpoint)
    for name, value in b.state_dict().items():
        torch.testing.assert_close(a.state_dict()[name], value, **BF16_TOLERANCE, msg=name)
    assert losses(resumed) == pytest.approx(losses(straight), rel=BF16_TOLERANCE["rtol"])


def synchronizations(experiment, tiny_dataset, out: Path, steps: int) -> int:
    """Host syncs that torch reports in a 1-epoch run of ``steps`` steps (no progress lines: each
    prints the running loss, which syncs)."""
    config, subset, _ = experiment
    args = pretrain_args(config, "simsiam-100pct", tiny_dataset, subset, out)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert run_cli(*args, "--set", f'{{"pretrain": {{"epochs": 1, "steps_per_epoch": {steps}, "log_every": 0}}}}') == 0
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(warning.message) for warning in caught)


def test_more_steps_add_no_host_sync_but_the_periodic_checks(experiment, tiny_dataset, tmp_path):
    short = synchronizations(experiment, tiny_dataset, tmp_path / "short", loop.CHECK_EVERY)
    long = synchronizations(experiment, tiny_dataset, tmp_path / "long", 3 * loop.CHECK_EVERY)
    assert long - short <= 2 * 2, (short, long)  # 2 more checks, each reading a flag (divergence, stop)
