"""The six real ImageNet spectra committed under tests/data/reference-spectra (see its README)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "data" / "reference-spectra"
PERCENTS = [1, 5, 10, 20, 50, 100]  # of ImageNet's training set, as the authors pretrained


def reference_path(percent: int) -> Path:
    return REFERENCE_DIR / f"resnet18_imagenet_{percent}percent.csv"


def reference_spectrum(percent: int) -> np.ndarray:
    """The descending singular values (512) of the ``percent`` model's training representation."""
    return np.loadtxt(reference_path(percent), skiprows=1)
