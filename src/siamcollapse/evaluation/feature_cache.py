"""The cached features of a run (``layout.FeatureDir``), read back for the probes. Apart from
the extraction code, so that a stage which only reads features depends on none of augmentation,
datasets or models."""

from __future__ import annotations

from pathlib import Path

import torch

from ..io import load_npy
from ..layout import FeatureDir


def load_features(features_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    files = FeatureDir(features_dir)
    return torch.from_numpy(load_npy(files.features(split))), torch.from_numpy(load_npy(files.labels(split)))
