"""A pretraining run whose loss stops being finite fails at once, naming the run, epoch, step and
lr, with a non-zero exit and no file that looks complete (no checkpoint; the last complete
epoch's resumable state stays)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from siamcollapse.errors import TrainingDiverged
from siamcollapse.layout import RunDir
from siamcollapse.methods import simsiam

from .test_stages import pretrain_args, run_cli, whole_subset_experiment

# SimSiam with an lr of 1e30 (x batch 8 / 256): the weights overflow within the first steps.
STEPS = 3
OVERRIDES = {"pretrain": {"epochs": 2, "steps_per_epoch": STEPS, "batch_size": 8},
             "runs": {"blowup": {"fractions": [1.0], "pretrain": {"base_lr": 1.0e30}},
                      "later": {"fractions": [1.0]}}}


@pytest.fixture(scope="module")
def experiment(tiny_dataset: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    return whole_subset_experiment(tiny_dataset, tmp_path_factory.mktemp("divergence"), OVERRIDES)


def test_a_non_finite_loss_stops_the_run_with_an_error_and_no_checkpoint(experiment, tiny_dataset, capsys):
    config, subset, out = experiment
    run_dir = out / "blowup-100pct"
    code = run_cli(*pretrain_args(config, "blowup-100pct", tiny_dataset, subset, run_dir))
    assert code == TrainingDiverged.exit_code
    message = capsys.readouterr().err
    assert "run 'blowup-100pct'" in message and "non-finite at epoch 1 step " in message
    assert "lower base_lr (now 1e+30; methods.simsiam.base_lr, or the run group's pretrain.base_lr)" in message
    files = RunDir(run_dir)
    assert not files.checkpoint.exists() and not files.info.exists()  # nothing that looks complete
    assert not files.resume.exists()  # it diverged in its first epoch: no complete epoch to resume


def test_a_divergence_in_a_later_epoch_keeps_the_last_complete_epochs_state(experiment, tiny_dataset, monkeypatch,
                                                                           capsys):
    calls = {"steps": 0}
    real_loss = simsiam.simsiam_loss

    def nan_from_the_second_epoch(*args, **kwargs):  # a fault injected from epoch 2 step 2 on
        calls["steps"] += 1
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if calls["steps"] > STEPS + 1 else loss

    monkeypatch.setattr(simsiam, "simsiam_loss", nan_from_the_second_epoch)
    config, subset, out = experiment
    run_dir = out / "later-100pct"
    assert run_cli(*pretrain_args(config, "later-100pct", tiny_dataset, subset, run_dir)) == TrainingDiverged.exit_code
    assert "non-finite at epoch 2 step 2 " in capsys.readouterr().err
    files = RunDir(run_dir)
    assert not files.checkpoint.exists()
    state = torch.load(files.resume, weights_only=False)  # epoch 1's state, untouched by the failed epoch
    assert state["epoch"] == 1 and state["epoch_progress"] is None
    assert len(files.train_log.read_text().splitlines()) == 2  # the header and epoch 1
