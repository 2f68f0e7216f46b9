"""`siamcollapse augmented-probe` on a tiny embedded dataset, through the real CLI entry point."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from siamcollapse import plan
from siamcollapse.config import load_experiment
from siamcollapse.training.checkpoint import load_backbone
from tests.integration.test_stages import extract_args, run_cli, write_config

# configs/test.yaml-like: 10 classes (so top-5 is reported), 16 px, a width-8 ResNet-18, one thread.
TINY = {
    "dataset": {"image_size": 16},
    "embedded": {"num_classes": 10, "train_per_class": 3, "val_per_class": 2, "image_size": 16},
    "linear_probe": {"mode": "augmented", "epochs": 2, "batch_size": 8},
    "resources": {family: {"threads": 1} for family in ("default", "pretrain", "extract")},
}


@dataclass
class Setup:
    config: Path
    data: Path
    checkpoint: Path


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def probe_args(setup: Setup, out: Path, *extra: str | Path) -> list[str | Path]:
    return ["augmented-probe", "--config", setup.config, *extra, "--checkpoint", setup.checkpoint,
            "--data-root", setup.data, "--out", out]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    """prepare-data, then the random-init baseline's checkpoint of the config's model."""
    out = tmp_path_factory.mktemp("augmented_probe")
    data = out / "data"
    config = write_config(out, data, TINY)
    assert run_cli("prepare-data", "--config", config, "--out", data) == 0
    baseline = next(run for run in plan.expand_runs(load_experiment([config])).values() if run.is_baseline)
    run_dir = out / "runs" / baseline.name
    assert run_cli("pretrain", "--config", config, "--run", baseline.name, "--data-root", data,
                   "--out-dir", run_dir) == 0
    return Setup(config, data, run_dir / "checkpoint.pt")


def test_stage_writes_the_cached_probe_keys_plus_its_mode_and_top5(setup: Setup, tmp_path: Path):
    out, log = tmp_path / "augmented.json", tmp_path / "augmented.log"
    assert run_cli(*probe_args(setup, out, "--log", log)) == 0
    result = read_json(out)
    # The cached probe on the same checkpoint: the augmented probe reports everything it does.
    assert run_cli(*extract_args(setup.config, setup.checkpoint, setup.data, tmp_path)) == 0
    assert run_cli("linear-probe", "--config", setup.config, "--checkpoint", setup.checkpoint,
                   "--features-dir", tmp_path / "features", "--out", tmp_path / "cached.json") == 0
    assert set(read_json(tmp_path / "cached.json")) <= set(result)
    assert result["linear_probe_mode"] == "augmented" and result["mode"] == "augmented"
    assert 0 <= result["linear_top1"] <= 100 and 0 <= result["linear_train_top1"] <= 100
    assert result["linear_top1"] <= result["linear_top5"] <= 100  # 10 classes: top-5 is reported
    assert (result["epochs"], result["batch_size"], result["lr"]) == (2, 8, 0.1)  # config, then schema default
    _, meta = load_backbone(setup.checkpoint)
    assert result["backbone_unchanged"] is True and result["backbone_fingerprint"] == meta["fingerprint"]
    text = log.read_text()
    assert "probe epoch 1/2" in text and "probe epoch 2/2" in text and "images/s" in text
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left behind


def test_streaming_from_disk_through_workers_gives_the_same_metrics(setup: Setup, tmp_path: Path):
    def streamed(workers: int) -> dict[str, Any]:
        overrides = {"dataset": {"in_memory": False}, "evaluation": {"num_workers": workers}}
        out = tmp_path / f"workers{workers}.json"
        assert run_cli(*probe_args(setup, out, "--set", json.dumps(overrides))) == 0
        return read_json(out)

    none, one = streamed(0), streamed(1)
    assert none == one  # crops are seeded per image, not per worker (the exact check is a unit test)
    assert none["linear_probe_mode"] == "augmented" and 0 <= none["linear_top1"] <= 100


def test_missing_inputs_are_named_and_nothing_is_written(setup: Setup, tmp_path: Path, capsys):
    out = tmp_path / "probe.json"
    missing = tmp_path / "no-such-data"
    assert run_cli("augmented-probe", "--config", setup.config, "--checkpoint", setup.checkpoint,
                   "--data-root", missing, "--out", out) == 2
    assert str(missing) in capsys.readouterr().err and not out.exists()
    assert run_cli("augmented-probe", "--config", setup.config, "--checkpoint", tmp_path / "none.pt",
                   "--data-root", setup.data, "--out", out) == 2
    assert "checkpoint not found" in capsys.readouterr().err and not out.exists()


def test_command_is_listed_and_reads_the_gpu_resource_family(capsys):
    from siamcollapse.stages import augmented_probe

    with pytest.raises(SystemExit):
        run_cli("--help")
    assert "augmented-probe" in capsys.readouterr().out
    assert augmented_probe.RESOURCES == "extract"
