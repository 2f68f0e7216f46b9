"""The label-free collapse metrics tracked during pretraining: they flag a run that collapses
(SimSiam without its stop-gradient, the SimSiam paper's ablation) within a few epochs, follow
``pretrain.track_every``, and equal what extraction measures on the same images."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from siamcollapse.data import embedded
from siamcollapse.layout import RunDir
from siamcollapse.metrics import SPECTRUM_METRICS

from .test_stages import extract_args, pretrain_args, run_cli, whole_subset_experiment

EPOCHS = 5
OVERRIDES = {
    "dataset": {"image_size": 16},
    "embedded": {"train_per_class": 12, "val_per_class": 4, "image_size": 16},
    # a large lr, so that 30 steps are enough for the ablation to collapse
    "pretrain": {"epochs": EPOCHS, "steps_per_epoch": 6, "batch_size": 32, "zero_init_residual": False},
    "methods": {"simsiam": {"proj_dim": 64, "pred_dim": 16, "base_lr": 2.0}},
    "runs": {"healthy": {"fractions": [1.0]},
             "no-stop-gradient": {"fractions": [1.0], "pretrain": {"stop_gradient": False}},
             "every-2nd": {"fractions": [1.0], "pretrain": {"epochs": 3, "steps_per_epoch": 2, "track_every": 2}}},
}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    root = tmp_path_factory.mktemp("collapse")
    data = root / "embedded"
    embedded.generate(data, seed=0, train_per_class=12, val_per_class=4, image_size=16, progress=False)
    return (*whole_subset_experiment(data, root, OVERRIDES), data)


def train(experiment, run: str) -> Path:
    config, subset, out, data = experiment
    assert run_cli(*pretrain_args(config, run, data, subset, out / run)) == 0
    return out / run


def tracked(run_dir: Path) -> list[dict[str, float]]:
    """The logged rows, the tracked metrics as numbers (None where the epoch was not tracked)."""
    with open(RunDir(run_dir).train_log) as handle:
        return [{k: float(row[k]) if row[k] else None for k in ("epoch", *SPECTRUM_METRICS)}
                for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def healthy(experiment) -> Path:
    return train(experiment, "healthy-100pct")


def test_a_run_without_stop_gradient_is_flagged_by_every_metric_from_its_first_epoch(experiment, healthy):
    collapsing = tracked(train(experiment, "no-stop-gradient-100pct"))
    control = tracked(healthy)  # the same seed, data and steps, with the stop-gradient
    assert len(collapsing) == len(control) == EPOCHS
    for ablated, kept in zip(collapsing, control, strict=True):
        epoch = int(kept["epoch"])
        assert ablated["rankme"] < kept["rankme"], epoch  # fewer effective directions
        assert ablated["nesum"] < kept["nesum"], epoch
        assert ablated["auc"] > kept["auc"], epoch  # more of the spectrum in its first directions
        assert ablated["alpha_req"] > kept["alpha_req"], epoch  # a faster-decaying spectrum
    # Fewer than half the effective directions over the run. Not at every epoch: how far the
    # ablation recovers in its last, low-lr epoch depends on the CPU's float arithmetic (on an
    # AVX2-only machine its RankMe came back to 19 of the control's 27 at epoch 5).
    assert sum(row["rankme"] for row in collapsing) < 0.5 * sum(row["rankme"] for row in control)


def test_tracking_runs_every_track_every_epochs_and_after_the_last(experiment):
    rows = tracked(train(experiment, "every-2nd-100pct"))
    assert [row["epoch"] for row in rows if row["rankme"] is not None] == [2, 3]
    assert all(row[m] is None for row in rows if row["epoch"] == 1 for m in SPECTRUM_METRICS)


def test_the_last_tracked_values_are_what_extraction_measures_on_the_same_images(experiment, healthy, tmp_path):
    # 120 training images < pretrain.track_images: the tracked sample is the whole training set,
    # which extraction measures too (the same eval transform, batch norm in eval mode)
    config, _, _, data = experiment
    assert run_cli(*extract_args(config, RunDir(healthy).checkpoint, data, tmp_path)) == 0
    extracted = json.loads((tmp_path / "spectrum.json").read_text())
    last = tracked(healthy)[-1]
    for metric in SPECTRUM_METRICS:
        assert last[metric] == pytest.approx(extracted[metric], rel=1e-5), metric
    assert extracted["lidar_images"] == 120 and extracted["lidar"] > 1
