"""Truncated or corrupt files of a run: a clear error naming the file, or, for the resume state,
a warning and a fresh start with the bad file moved aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from siamcollapse.io import UnreadableFile, load_tensors, load_torch, save_torch
from siamcollapse.layout import FeatureDir, RunDir
from siamcollapse.models.backbones import build_backbone
from siamcollapse.training.checkpoint import load_backbone, load_resume_state, save_backbone, settings_hash

SETTINGS = {"pretrain": {"epochs": 2}}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_truncated_checkpoint_is_an_error_naming_it_and_how_to_regenerate_it(tmp_path: Path):
    path = tmp_path / "checkpoint.pt"
    save_backbone(path, build_backbone("resnet18", 8), {"arch": "resnet18", "width": 8}, {"run": "r"}, 2)
    load_backbone(path)  # readable as written
    truncate(path)
    with pytest.raises(UnreadableFile) as info:
        load_backbone(path)
    assert str(path) in str(info.value) and "truncated or corrupt" in str(info.value)
    assert "rerun the workflow" in str(info.value)


def test_a_truncated_resume_state_is_moved_aside_and_the_run_starts_afresh(tmp_path: Path, capsys):
    files = RunDir(tmp_path)
    save_torch(files.resume, {"settings_hash": settings_hash(SETTINGS), "epoch": 1})
    assert load_resume_state(tmp_path, settings_hash(SETTINGS))["epoch"] == 1
    truncate(files.resume)
    assert load_resume_state(tmp_path, settings_hash(SETTINGS)) is None
    assert not files.resume.exists() and (tmp_path / "resume.pt.unreadable").is_file()
    assert f"{files.resume} is unreadable" in capsys.readouterr().out
    assert load_resume_state(tmp_path, settings_hash(SETTINGS)) is None  # and the next rerun is a plain fresh start


def test_truncated_features_are_an_error_naming_the_file(tmp_path: Path):
    features = FeatureDir(tmp_path)
    np.save(features.features("train"), np.ones((4, 3), dtype=np.float32))
    np.save(features.labels("train"), np.arange(4))
    assert load_tensors(*features.split("train"))[0].shape == (4, 3)
    truncate(features.features("train"))
    with pytest.raises(UnreadableFile, match=str(features.features("train"))):
        load_tensors(*features.split("train"))
    np.save(features.features("train"), np.ones((4, 3), dtype=np.float32))
    features.labels("train").unlink()
    with pytest.raises(FileNotFoundError):  # a missing file stays a missing file
        load_tensors(*features.split("train"))


def test_torch_state_round_trips_through_the_loader(tmp_path: Path):
    save_torch(tmp_path / "s.pt", {"x": torch.arange(3)})
    assert torch.equal(load_torch(tmp_path / "s.pt")["x"], torch.arange(3))
