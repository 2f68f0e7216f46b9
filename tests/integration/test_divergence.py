"""A pretraining run whose loss (or tracked features) stops being finite fails at once, naming
the run, epoch, step and lr, with a non-zero exit and no file that looks complete (no
checkpoint; the last complete epoch's resumable state stays). A finite blow-up finishes every
stage and is flagged `diverged` in the tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from siamcollapse.errors import TrainingDiverged
from siamcollapse.layout import RunDir
from siamcollapse.methods import simsiam
from tests.helpers.stage_args import HEALTH_ARGS

from .test_stages import extract_args, pretrain_args, run_cli, whole_subset_experiment

# SimSiam with an lr of 1e30 (x batch 8 / 256): the weights overflow within the first steps.
STEPS = 3
OVERRIDES = {"pretrain": {"epochs": 2, "steps_per_epoch": STEPS, "batch_size": 8},
             "runs": {"blowup": {"fractions": [1.0], "pretrain": {"base_lr": 1.0e30}},
                      "later": {"fractions": [1.0]},
                      # SimSiam's loss is a bounded cosine: it stays finite while the weights blow up
                      "features": {"fractions": [1.0], "pretrain": {"base_lr": 1.0e9}},
                      "finite": {"fractions": [1.0], "pretrain": {"base_lr": 3000}}}}


@pytest.fixture(scope="module")
def experiment(tiny_dataset: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    return whole_subset_experiment(tiny_dataset, tmp_path_factory.mktemp("divergence"), OVERRIDES)


def diverged(experiment, tiny_dataset: Path, capsys, run: str) -> tuple[str, RunDir]:
    """Pretrain ``run``, which must stop as diverged; (its error message, its run directory)."""
    config, subset, out = experiment
    run_dir = out / run
    assert run_cli(*pretrain_args(config, run, tiny_dataset, subset, run_dir)) == TrainingDiverged.exit_code
    return capsys.readouterr().err, RunDir(run_dir)


def test_a_non_finite_loss_stops_the_run_with_an_error_and_no_checkpoint(experiment, tiny_dataset, capsys):
    message, files = diverged(experiment, tiny_dataset, capsys, "blowup-100pct")
    assert "run 'blowup-100pct'" in message and "non-finite at epoch 1 step " in message
    assert "lower base_lr (now 1e+30; methods.simsiam.base_lr, or the run group's pretrain.base_lr)" in message
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
    message, files = diverged(experiment, tiny_dataset, capsys, "later-100pct")
    assert "non-finite at epoch 2 step 2 " in message
    assert not files.checkpoint.exists()
    state = torch.load(files.resume, weights_only=False)  # epoch 1's state, untouched by the failed epoch
    assert state["epoch"] == 1 and state["epoch_progress"] is None
    assert len(files.train_log.read_text().splitlines()) == 2  # the header and epoch 1


def test_non_finite_features_under_a_finite_loss_stop_the_run(experiment, tiny_dataset, capsys):
    message, files = diverged(experiment, tiny_dataset, capsys, "features-100pct")
    assert "run 'features-100pct': the backbone's features became non-finite by the end of epoch 1" in message
    assert "lower base_lr (now 1e+09)" in message and not files.checkpoint.exists()


def evaluated(config: Path, run: str, tiny_dataset: Path, subset: Path | None, run_dir: Path) -> Path:
    """``run`` pretrained (or initialised), extracted, probed and kNN-classified; its run dir."""
    assert run_cli(*pretrain_args(config, run, tiny_dataset, subset, run_dir)) == 0
    assert run_cli(*extract_args(config, run_dir / "checkpoint.pt", tiny_dataset, run_dir)) == 0
    assert run_cli("linear-probe", "--config", config, "--checkpoint", run_dir / "checkpoint.pt",
                   "--features-dir", run_dir / "features", "--out", run_dir / "linear_probe.json") == 0
    assert run_cli("knn", "--config", config, "--features-dir", run_dir / "features", "--out", run_dir / "knn.json") == 0
    return run_dir


def test_a_finite_blow_up_finishes_and_is_flagged_diverged(experiment, tiny_dataset):
    config, subset, out = experiment
    runs = [evaluated(config, "finite-100pct", tiny_dataset, subset, out / "finite-100pct"),
            evaluated(config, "random-init-resnet18-w8", tiny_dataset, None, out / "floor")]
    assert run_cli("collect-tables", *HEALTH_ARGS, "--run-dirs", *runs, "--out-dir", out / "tables") == 0
    table = pd.read_csv(out / "tables" / "runs.csv").set_index("run")
    assert table.loc["finite-100pct", "health"] == "diverged" and table.loc["random-init-resnet18-w8", "health"] == "ok"
    assert "the untrained floor's (limit 100x)" in table.loc["finite-100pct", "health_reason"]
    assert "| finite-100pct † |" in (out / "tables" / "runs.md").read_text()
