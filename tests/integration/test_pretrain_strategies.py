"""Pretraining in segments, hybrid runs continuing a single-pass state, and distillation, through
the real `siamcollapse pretrain` command on tiny data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from siamcollapse.training.checkpoint import load_backbone

from .test_stages import TINY_MOCOV3, pretrain_args, run_cli, whole_subset_experiment, write_config

GROUPS = {
    "sp": {"fractions": [1.0], "pretrain": {"strategy": "single-pass"}},
    "hy": {"fractions": [1.0], "pretrain": {"strategy": "hybrid", "switch_epoch": 1, "hybrid_from": "sp"}},
    "moco": {"fractions": [1.0], "pretrain": {"method": "mocov3", "warmup_epochs": 1}},
    "std": {"fractions": [1.0], "pretrain": {"zero_init_residual": False}},
}
OVERRIDES = {
    "pretrain": {"epochs": 3, "steps_per_epoch": 2},
    "methods": {"mocov3": TINY_MOCOV3},
    "runs": GROUPS,
    "distillations": {"student": {"teacher": "moco-100pct", "model": {"arch": "resnet18"}}},
}


@pytest.fixture(scope="module")
def experiment(tiny_dataset: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    return whole_subset_experiment(tiny_dataset, tmp_path_factory.mktemp("strategies"), OVERRIDES)


def segment(experiment, tiny_dataset, run, *extra):
    config, subset, out = experiment
    return run_cli(*pretrain_args(config, run, tiny_dataset, subset, out / run), *extra)


def log_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "train_log.csv") as handle:
        return list(csv.DictReader(handle))


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_backbone(run_dir / "checkpoint.pt")[0].state_dict()


@pytest.fixture(scope="module")
def single_pass(experiment, tiny_dataset) -> Path:
    """The single-pass run in two segments: epochs 1 (-> its state) and 2-3 (from that state)."""
    out = experiment[2]
    state = out / "sp-state-epoch1.pt"
    assert segment(experiment, tiny_dataset, "sp-100pct", "--stop-after-epoch", 1, "--state-out", state) == 0
    assert state.is_file() and not (out / "sp-100pct" / "checkpoint.pt").exists()
    assert segment(experiment, tiny_dataset, "sp-100pct", "--init-state", state) == 0
    return state


def test_a_run_trained_in_segments_equals_one_trained_in_one_go(experiment, tiny_dataset, single_pass, tmp_path):
    subset = experiment[1]
    whole = tmp_path / "whole"
    # The same run, unsegmented: allowed by the CLI only without hybrids depending on it, so use a
    # config without the hybrid group.
    alone = write_config(tmp_path, tiny_dataset, {**OVERRIDES, "runs": {"sp": GROUPS["sp"]}, "distillations": {}})
    assert run_cli(*pretrain_args(alone, "sp-100pct", tiny_dataset, subset, whole)) == 0
    segmented = experiment[2] / "sp-100pct"
    assert [r["epoch"] for r in log_rows(segmented)] == ["1", "2", "3"]
    expected = weights(whole)
    for name, tensor in weights(segmented).items():
        assert torch.allclose(tensor, expected[name], atol=1e-6), name


def test_hybrid_continues_the_single_pass_state_at_its_switch_epoch(experiment, tiny_dataset, single_pass):
    assert segment(experiment, tiny_dataset, "hy-100pct", "--init-state", single_pass) == 0
    out = experiment[2]
    hybrid, source = log_rows(out / "hy-100pct"), log_rows(out / "sp-100pct")
    assert [r["epoch"] for r in hybrid] == ["1", "2", "3"]  # the epoch counter continued after 1
    assert hybrid[0] == source[0]  # epoch 1 is the single-pass run's, not retrained
    assert hybrid[1]["loss"] != source[1]["loss"]  # then it trains on the whole subset instead of chunk 2
    assert hybrid[1]["lr"] == source[1]["lr"]  # the same schedule (the optimizer state went on)
    state = torch.load(single_pass, map_location="cpu", weights_only=False)
    assert state["epoch"] == 1 and state["optimizer"]["state"]  # momentum buffers travel in the state


def test_a_hybrid_refuses_a_missing_or_foreign_state(experiment, tiny_dataset, single_pass, tmp_path, capsys):
    assert segment(experiment, tiny_dataset, "hy-100pct") == 2
    assert "--init-state" in capsys.readouterr().err
    foreign = tmp_path / "foreign.pt"
    state = torch.load(single_pass, map_location="cpu", weights_only=False)
    torch.save({**state, "settings_hash": "0" * 16}, foreign)
    assert segment(experiment, tiny_dataset, "hy-100pct", "--init-state", foreign) == 2
    assert "other settings" in capsys.readouterr().err


def test_distillation_trains_a_student_from_the_teacher_checkpoint(experiment, tiny_dataset, capsys):
    out = experiment[2]
    assert segment(experiment, tiny_dataset, "moco-100pct") == 0
    assert segment(experiment, tiny_dataset, "student") == 2  # the teacher is required
    assert "--teacher" in capsys.readouterr().err
    assert segment(experiment, tiny_dataset, "student", "--teacher", out / "moco-100pct" / "checkpoint.pt") == 0
    _, meta = load_backbone(out / "student" / "checkpoint.pt")
    assert meta["run"]["method"] == "distill" and meta["run"]["teacher"] == "moco-100pct"
    stats = meta["distill_stats"]
    assert stats["mean"].shape == stats["std"].shape == (load_backbone(out / "moco-100pct" / "checkpoint.pt")[0].feature_dim,)


def test_mocov3_decays_its_cosine_lr_every_step(experiment, tiny_dataset):
    """MoCo-v3's schedule (lr_decay: step) reaches the loop: the lr logged at each epoch's last
    step is the cosine at that step's fraction of the run, not at the epoch's start."""
    import math

    import yaml

    out = experiment[2]
    if not (out / "moco-100pct" / "checkpoint.pt").exists():
        assert segment(experiment, tiny_dataset, "moco-100pct") == 0
    hp = yaml.safe_load((out / "moco-100pct" / "config.yaml").read_text())["pretrain"]
    assert hp["lr_decay"] == "step" and hp["warmup_epochs"] == 1
    initial = hp["base_lr"] * hp["batch_size"] / 256
    steps, epochs, warmup = hp["steps_per_epoch"], hp["epochs"], hp["warmup_epochs"]
    for row in log_rows(out / "moco-100pct")[warmup:]:
        done = int(row["epoch"]) - 1 + (steps - 1) / steps - warmup
        expected = initial * 0.5 * (1 + math.cos(math.pi * done / (epochs - warmup)))
        assert float(row["lr"]) == pytest.approx(expected, abs=1e-6)


def test_pretrain_zero_init_residual_picks_the_trained_network_s_init(experiment, tiny_dataset, single_pass):
    """SimSiam's zero-init residual (the default) starts the last BN of every residual branch at 0;
    `pretrain.zero_init_residual: false` starts it at torchvision's 1. Six small steps later the
    two are still far apart."""
    def last_bn_scale(run_dir: Path) -> float:
        state = weights(run_dir)
        last_bns = [name for name in state if name.startswith("layer") and name.endswith("bn2.weight")]
        assert len(last_bns) == 8  # ResNet-18: two basic blocks in each of four stages
        return float(torch.cat([state[name].abs() for name in last_bns]).mean())

    out = experiment[2]
    assert segment(experiment, tiny_dataset, "std-100pct") == 0
    assert last_bn_scale(out / "std-100pct") > 0.5 > last_bn_scale(out / "sp-100pct")
