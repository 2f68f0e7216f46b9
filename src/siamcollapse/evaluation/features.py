"""Feature extraction: backbone outputs of every train and val image, no augmentation.

Features stream to ``.npy`` files on disk (memory-mapped, so ImageNet-sized sets never sit
in memory) while the training set's spectrum is accumulated on the fly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.augment import eval_transform
from ..data.sources import ImageFolderStream, load_split
from ..fingerprint import state_fingerprint
from ..io import atomic_path, write_json
from ..layout import FEATURE_SPLITS, FeatureDir
from ..names import BACKBONE_SOURCE
from .spectrum import SpectrumAccumulator

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class RawPixels(torch.nn.Module):
    """The raw-pixel floor's "backbone": the eval-transformed, normalised image, flattened.

    Images larger than ``max_side`` are area-averaged (adaptive average pooling) down to
    ``max_side`` x ``max_side`` first, so an ImageNet-sized input gives 3 x 32 x 32 features,
    not 150,528. It has no parameters: nothing to train, nothing that can change.
    """

    def __init__(self, image_size: int, max_side: int, channels: int = 3) -> None:
        super().__init__()
        self.side = min(image_size, max_side)
        self.feature_dim = channels * self.side * self.side

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.side or images.shape[-2] != self.side:
            images = torch.nn.functional.adaptive_avg_pool2d(images, self.side)
        return images.flatten(1)


def _image_batches(data: dict[str, Any], root: Path, split: str, batch_size: int,
                   num_workers: int) -> tuple[int, Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    if data["in_memory"]:
        images = load_split(data["source"], root, split, data["image_size"])
        batches = ((images.images[i:i + batch_size], images.labels[i:i + batch_size])
                   for i in range(0, len(images), batch_size))
        return len(images), batches
    stream = ImageFolderStream(root, split, data["image_size"])
    loader = DataLoader(stream, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    return len(stream), iter(loader)


@torch.no_grad()
def extract_split(backbone: torch.nn.Module, data: dict[str, Any], root: Path, split: str, out_dir: Path,
                  batch_size: int, num_workers: int, device: torch.device) -> SpectrumAccumulator:
    """Write ``<split>.npy`` (N x d float32) and ``<split>_labels.npy``; return the spectrum state."""
    count, batches = _image_batches(data, root, split, batch_size, num_workers)
    spectrum = SpectrumAccumulator(backbone.feature_dim)
    files = FeatureDir(out_dir)
    features_path, labels_path = files.features(split), files.labels(split)
    labels = np.empty(count, dtype=np.int64)
    with atomic_path(features_path) as tmp:
        features = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, backbone.feature_dim))
        done = 0
        for images, batch_labels in batches:
            inputs = eval_transform(images.to(device), data["image_size"], MEAN, STD)
            batch = backbone(inputs).float().cpu()
            features[done:done + len(batch)] = batch.numpy()
            labels[done:done + len(batch)] = batch_labels.numpy()
            spectrum.update(batch)
            done += len(batch)
        features.flush()
        del features
    with atomic_path(labels_path) as tmp:
        np.save(tmp.open("wb"), labels)
    print(f"extracted {count} {split} features of dimension {backbone.feature_dim}", flush=True)
    return spectrum


def extract(backbone: torch.nn.Module, fingerprint: str, data: dict[str, Any], root: Path, out_dir: Path,
            batch_size: int, num_workers: int, source: str = BACKBONE_SOURCE) -> np.ndarray:
    """Extract train and val features; return the training set's singular values.

    ``source`` (``BACKBONE_SOURCE`` or ``RAW_PIXELS_SOURCE``) is recorded in meta.json: the linear probe checks a
    backbone's features against its checkpoint, and accepts raw pixels without one.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = backbone.to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    spectra = {split: extract_split(backbone, data, root, split, out_dir, batch_size, num_workers, device)
               for split in FEATURE_SPLITS}
    if state_fingerprint(backbone) != fingerprint:
        raise RuntimeError("the backbone changed during feature extraction")
    write_json(FeatureDir(out_dir).meta, {"fingerprint": fingerprint, "source": source, "dim": backbone.feature_dim,
                                       "counts": {s: spectra[s].count for s in FEATURE_SPLITS}})
    return spectra["train"].singular_values()
