"""Every stage command on tiny data, through the real CLI entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from siamcollapse import cli
from siamcollapse.training import loop
from siamcollapse.training.checkpoint import RESUME_NAME, load_backbone

TINY = {
    "run": {"run": "tiny-100pct", "group": "tiny", "method": "simsiam", "arch": "resnet18",
            "dataset_fraction": 1.0, "strategy": "iid"},
    "model": {"arch": "resnet18", "width": 8, "stem": "imagenet"},
    "pretrain": {"method": "simsiam", "strategy": "iid", "epochs": 2, "steps_per_epoch": 2, "batch_size": 8,
                 "base_lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4, "fix_pred_lr": True, "proj_dim": 32,
                 "pred_dim": 8, "seed": 0, "num_workers": 0, "log_every": 0},
    "data": {"source": "embedded", "image_size": 32, "in_memory": True},
    "augment": {"crop_min_scale": 0.2, "jitter_p": 0.8, "grayscale_p": 0.2, "blur_p": 0.5, "flip_p": 0.5},
}


def run_cli(*args: str | Path) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture(scope="module")
def pipeline(tiny_dataset: Path, tmp_path_factory) -> Path:
    """subset -> pretrain -> extract -> probe -> kNN on the tiny dataset; returns the run dir."""
    out = tmp_path_factory.mktemp("pipeline")
    run_dir = out / "runs" / "tiny-100pct"
    assert run_cli("make-subset", "--data-root", tiny_dataset, "--fraction", "1.0", "--out", out / "subset.json") == 0
    assert run_cli("pretrain", "--settings", json.dumps(TINY), "--data-root", tiny_dataset,
                   "--subset", out / "subset.json", "--out-dir", run_dir) == 0
    assert run_cli("extract", "--checkpoint", run_dir / "checkpoint.pt", "--data-root", tiny_dataset,
                   "--features-dir", run_dir / "features", "--spectrum", run_dir / "spectrum.csv",
                   "--summary", run_dir / "spectrum.json", "--num-workers", "0") == 0
    assert run_cli("linear-probe", "--checkpoint", run_dir / "checkpoint.pt", "--features-dir", run_dir / "features",
                   "--epochs", "3", "--out", run_dir / "linear_probe.json") == 0
    assert run_cli("knn", "--features-dir", run_dir / "features", "--k", "3", "20", "--out", run_dir / "knn.json") == 0
    return run_dir


def test_pretrain_writes_checkpoint_log_and_resolved_settings(pipeline: Path):
    _backbone, meta = load_backbone(pipeline / "checkpoint.pt")
    assert meta["epochs_trained"] == 2 and meta["run"]["run"] == "tiny-100pct"
    log = (pipeline / "train_log.csv").read_text().splitlines()
    assert log[0].split(",") == loop.LOG_COLUMNS and len(log) == 3
    assert json.loads((pipeline / "run.json").read_text())["method"] == "simsiam"
    assert "pretrain:" in (pipeline / "config.yaml").read_text()
    assert not (pipeline / RESUME_NAME).exists()


def test_extract_writes_features_and_a_spectrum_that_matches_them(pipeline: Path):
    train = np.load(pipeline / "features" / "train.npy")
    labels = np.load(pipeline / "features" / "train_labels.npy")
    assert train.shape == (30, 64) and labels.tolist() == sorted(labels.tolist())
    streamed = np.loadtxt(pipeline / "spectrum.csv", skiprows=1)
    exact = np.linalg.svd(train.astype(np.float64) - train.astype(np.float64).mean(0), compute_uv=False)
    exact = np.pad(exact, (0, train.shape[1] - len(exact)))  # N < d: the remaining values are zero
    assert np.max(np.abs(streamed - exact)) <= 1e-6 * exact[0]
    summary = json.loads((pipeline / "spectrum.json").read_text())
    assert 0.5 < summary["auc"] <= 1.0


def test_probe_and_knn_report_accuracies(pipeline: Path):
    probe = json.loads((pipeline / "linear_probe.json").read_text())
    assert 0 <= probe["linear_top1"] <= 100 and probe["backbone_unchanged"]
    knn = json.loads((pipeline / "knn.json").read_text())
    assert knn["knn_k"] == 3 and set(knn) >= {"knn_top1", "knn_top1_k3", "knn_top1_k20"}


def test_probe_refuses_features_of_another_backbone(pipeline: Path, tmp_path: Path):
    other = tmp_path / "other"
    settings = {**TINY, "run": {**TINY["run"], "method": "random-init"}, "model": {**TINY["model"], "width": 8}}
    settings["pretrain"] = {**TINY["pretrain"], "seed": 5}
    assert run_cli("pretrain", "--settings", json.dumps(settings), "--data-root", "unused", "--out-dir", other) == 0
    code = run_cli("linear-probe", "--checkpoint", other / "checkpoint.pt", "--features-dir", pipeline / "features",
                   "--out", tmp_path / "probe.json")
    assert code == 2 and not (tmp_path / "probe.json").exists()


def test_killed_pretraining_resumes_and_matches_an_uninterrupted_run(tiny_dataset: Path, tmp_path: Path, monkeypatch):
    run_cli("make-subset", "--data-root", tiny_dataset, "--fraction", "0.5", "--out", tmp_path / "s.json")
    args = ["pretrain", "--settings", json.dumps(TINY), "--data-root", tiny_dataset, "--subset", tmp_path / "s.json"]
    assert run_cli(*args, "--out-dir", tmp_path / "straight") == 0

    real_epoch, calls = loop._train_epoch, []

    def dies_in_second_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return real_epoch(*a, **k)

    monkeypatch.setattr(loop, "_train_epoch", dies_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_cli(*args, "--out-dir", tmp_path / "killed")
    assert (tmp_path / "killed" / RESUME_NAME).exists()
    assert not (tmp_path / "killed" / "checkpoint.pt").exists()  # no output that looks complete
    monkeypatch.setattr(loop, "_train_epoch", real_epoch)
    calls.clear()
    assert run_cli(*args, "--out-dir", tmp_path / "killed") == 0
    resumed, _ = load_backbone(tmp_path / "killed" / "checkpoint.pt")
    straight, _ = load_backbone(tmp_path / "straight" / "checkpoint.pt")
    for (name, a), b in zip(resumed.state_dict().items(), straight.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    log = (tmp_path / "killed" / "train_log.csv").read_text().splitlines()
    assert len(log) == 3


def test_missing_dataset_path_is_a_clear_error_and_writes_nothing(tmp_path: Path, capsys):
    missing = tmp_path / "no-such-dataset"
    code = run_cli("make-subset", "--data-root", missing, "--fraction", "0.5", "--out", tmp_path / "s.json")
    assert code == 2 and str(missing) in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_empty_class_folder_is_named(tiny_dataset: Path, tmp_path: Path, capsys):
    broken = tmp_path / "data"
    shutil.copytree(tiny_dataset, broken)
    empty = broken / "train" / "99_empty"
    empty.mkdir()
    code = run_cli("make-subset", "--data-root", broken, "--fraction", "0.5", "--out", tmp_path / "s.json")
    assert code == 2 and "99_empty" in capsys.readouterr().err and not (tmp_path / "s.json").exists()


def test_corrupt_image_is_named_and_extraction_leaves_no_output(tiny_dataset: Path, pipeline: Path, tmp_path: Path,
                                                                 capsys):
    broken = tmp_path / "data"
    shutil.copytree(tiny_dataset, broken)
    victim = min((broken / "val").glob("*/*.png"))
    victim.write_bytes(b"not a png at all")
    out = tmp_path / "run"
    code = run_cli("extract", "--checkpoint", pipeline / "checkpoint.pt", "--data-root", broken,
                   "--features-dir", out / "features", "--spectrum", out / "spectrum.csv",
                   "--summary", out / "spectrum.json")
    assert code == 2 and victim.name in capsys.readouterr().err
    assert not (out / "spectrum.csv").exists() and not (out / "features" / "meta.json").exists()
    assert not list((out / "features").glob("val*"))


def test_pretrain_rejects_a_subset_made_for_another_dataset(tiny_dataset: Path, tmp_path: Path, capsys):
    (tmp_path / "s.json").write_text(json.dumps({"num_train": 999, "indices": [0, 1]}))
    code = run_cli("pretrain", "--settings", json.dumps(TINY), "--data-root", tiny_dataset,
                   "--subset", tmp_path / "s.json", "--out-dir", tmp_path / "run")
    assert code == 2 and "regenerate" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_console_script_lists_every_stage():
    exe = Path(sys.executable).with_name("siamcollapse")
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for stage in ["prepare-data", "make-subset", "pretrain", "extract", "linear-probe", "knn", "collect", "plot"]:
        assert stage in help_text


def test_streaming_from_disk_trains_and_extracts_the_same_features_as_in_memory(tiny_dataset: Path, pipeline: Path,
                                                                                 tmp_path: Path):
    streaming = {**TINY, "data": {**TINY["data"], "in_memory": False}}
    run_cli("make-subset", "--data-root", tiny_dataset, "--fraction", "1.0", "--out", tmp_path / "s.json")
    assert run_cli("pretrain", "--settings", json.dumps(streaming), "--data-root", tiny_dataset,
                   "--subset", tmp_path / "s.json", "--out-dir", tmp_path / "run") == 0
    assert len((tmp_path / "run" / "train_log.csv").read_text().splitlines()) == 3
    out = tmp_path / "features"
    assert run_cli("extract", "--checkpoint", pipeline / "checkpoint.pt", "--data-root", tiny_dataset,
                   "--no-in-memory", "--num-workers", "0", "--features-dir", out,
                   "--spectrum", tmp_path / "spectrum.csv", "--summary", tmp_path / "spectrum.json") == 0
    assert np.allclose(np.load(out / "val.npy"), np.load(pipeline / "features" / "val.npy"), atol=1e-5)
