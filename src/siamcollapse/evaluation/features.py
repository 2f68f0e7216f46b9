"""Feature extraction: backbone outputs of every train and val image, no augmentation.

Features stream to ``.npy`` files on disk (memory-mapped, so ImageNet-sized sets never sit
in memory) while the spectra of both splits, raw and L2-normalised, are accumulated on the
fly. LiDAR, which needs augmented views, is measured on a fixed sample of training images.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.augment import BatchAugment, eval_transform
from ..data.catalog import count_split
from ..data.loaders import augment_config
from ..data.sources import ImageFolderStream, LabeledImages, decode_images, load_split
from ..data.subsets import fixed_sample
from ..fingerprint import state_fingerprint
from ..io import atomic_path, write_json
from ..layout import FEATURE_SPLITS, FeatureDir
from ..metrics import LIDAR, SPECTRUM_METRICS, spectrum_summary
from ..names import BACKBONE_SOURCE
from ..progress import report as report_progress
from ..spectrum_csv import HEADLINE_VARIANT, SPECTRUM_VARIANTS, write_spectrum
from .lidar import augmented_embeddings, lidar_of_embeddings
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


def _image_batches(data: dict[str, Any], root: Path, split: str, batch_size: int, num_workers: int,
                   decoded: LabeledImages | None = None) -> tuple[int, Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """(count, batches of (uint8 images, labels)) of a split: from ``decoded`` or decoded here
    when the dataset is held in memory, else streamed from disk."""
    if data["in_memory"]:
        images = decoded if decoded is not None else load_split(data["source"], root, split, data["image_size"],
                                                                val_classes=data["val_classes"])
        batches = ((images.images[i:i + batch_size], images.labels[i:i + batch_size])
                   for i in range(0, len(images), batch_size))
        return len(images), batches
    stream = ImageFolderStream(root, split, data["image_size"], val_classes=data["val_classes"])
    loader = DataLoader(stream, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    return len(stream), iter(loader)


@dataclass(frozen=True)
class LidarSettings:
    """How extraction measures LiDAR: ``images`` of the training set (0: not at all), ``views``
    each, drawn with the run's training ``augment`` settings (the config's ``augment`` keys)."""

    images: int
    views: int
    augment: dict[str, Any]

    @classmethod
    def from_config(cls, evaluation: dict[str, Any], augment: dict[str, Any]) -> LidarSettings:
        return cls(evaluation["lidar_images"], evaluation["lidar_views"], augment)


@torch.no_grad()
def extract_split(backbone: torch.nn.Module, data: dict[str, Any], root: Path, split: str, out_dir: Path,
                  batch_size: int, num_workers: int, device: torch.device,
                  decoded: LabeledImages | None = None) -> dict[str, SpectrumAccumulator]:
    """Write ``<split>.npy`` (N x d float32) and ``<split>_labels.npy``; return the spectrum
    states of the raw and of the L2-normalised features (``{"raw": ..., "l2": ...}``)."""
    count, batches = _image_batches(data, root, split, batch_size, num_workers, decoded)
    spectra = {kind: SpectrumAccumulator(backbone.feature_dim) for kind in ("raw", "l2")}
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
            spectra["raw"].update(batch)
            spectra["l2"].update(torch.nn.functional.normalize(batch.double(), dim=-1))
            done += len(batch)
            report_progress(f"extract {split}", done, count)
        features.flush()
        del features
    with atomic_path(labels_path) as tmp:
        np.save(tmp.open("wb"), labels)
    print(f"extracted {count} {split} features of dimension {backbone.feature_dim}", flush=True)
    return spectra


def _lidar(backbone: torch.nn.Module, data: dict[str, Any], root: Path, settings: LidarSettings, batch_size: int,
           device: torch.device, train: LabeledImages | None) -> dict[str, Any]:
    """LiDAR of the raw and L2-normalised features (None where undefined), and how it was measured;
    ``train`` is the decoded training split of an in-memory dataset."""
    indices = fixed_sample(count_split(data["source"], root, "train"), settings.images)
    images = train.images[torch.from_numpy(indices)] if train is not None \
        else decode_images(root, "train", data["image_size"], indices, for_training=True)
    augment = BatchAugment(augment_config(settings.augment), data["image_size"])
    embeddings = augmented_embeddings(backbone, images, augment, settings.views, batch_size, device)
    try:
        values: dict[str, Any] = lidar_of_embeddings(embeddings)
    except ValueError as err:  # constant or non-finite embeddings: LiDAR has no value
        print(f"LiDAR undefined: {err}", flush=True)
        values = {"lidar": None, "lidar_l2": None}
    print(f"LiDAR on {len(indices)} training images x {settings.views} augmented views: {values['lidar']}",
          flush=True)
    return {**values, "lidar_images": len(indices), "lidar_views": settings.views}


def extract(backbone: torch.nn.Module, fingerprint: str, data: dict[str, Any], root: Path, out_dir: Path,
            batch_size: int, num_workers: int, source: str = BACKBONE_SOURCE,
            lidar: LidarSettings | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Extract train and val features; return their spectra and the LiDAR record.

    Spectra: ``{variant: singular values}`` for ``spectrum_csv.SPECTRUM_VARIANTS`` (train and
    val, raw and L2-normalised). LiDAR (``lidar_of_embeddings``' keys, the images and views
    used) is measured when ``lidar`` asks for images; else the record is empty.
    ``source`` (``BACKBONE_SOURCE`` or ``RAW_PIXELS_SOURCE``) is recorded in meta.json: the linear probe checks a
    backbone's features against its checkpoint, and accepts raw pixels without one.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = backbone.to(device).eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    # An in-memory dataset is decoded once, for the features and for LiDAR's views.
    decoded = {split: load_split(data["source"], root, split, data["image_size"], val_classes=data["val_classes"])
               for split in FEATURE_SPLITS} if data["in_memory"] else {}
    states = {split: extract_split(backbone, data, root, split, out_dir, batch_size, num_workers, device,
                                   decoded.get(split))
              for split in FEATURE_SPLITS}
    lidar_record = (_lidar(backbone, data, root, lidar, batch_size, device, decoded.get("train"))
                    if lidar and lidar.images else {})
    if state_fingerprint(backbone) != fingerprint:
        raise RuntimeError("the backbone changed during feature extraction")
    write_json(FeatureDir(out_dir).meta, {"fingerprint": fingerprint, "source": source, "dim": backbone.feature_dim,
                                       "counts": {s: states[s]["raw"].count for s in FEATURE_SPLITS}})
    spectra = {f"{split}_{kind}": state.singular_values() for split in FEATURE_SPLITS for kind, state in states[split].items()}
    return spectra, lidar_record


def _json_number(value: Any) -> Any:
    """NaN (an undefined metric) as JSON null: tables read it as missing, DVC can parse it."""
    return None if isinstance(value, float) and math.isnan(value) else value


def write_spectrum_outputs(spectrum_path: Path, summary_path: Path, spectra: dict[str, np.ndarray],
                           lidar_record: dict[str, Any]) -> dict[str, Any]:
    """spectrum.csv (every variant) and spectrum.json: the headline's (train, raw) metrics at the
    top level, LiDAR beside them, each variant's metrics under ``variants``; returns the JSON."""
    write_spectrum(spectrum_path, spectra)
    variants = {variant: {k: _json_number(v) for k, v in spectrum_summary(spectra[variant]).items()}
                for variant in SPECTRUM_VARIANTS}
    split, features = HEADLINE_VARIANT.split("_")
    summary = {"split": split, "features": features, **variants[HEADLINE_VARIANT], **lidar_record,
               "variants": variants}
    write_json(summary_path, summary)
    print(f"{HEADLINE_VARIANT} spectrum: " + ", ".join(
        f"{k} {v:.4g}" for k, v in summary.items() if k in (*SPECTRUM_METRICS, LIDAR) and v is not None)
        + f" ({summary['dims']} dimensions)", flush=True)
    return summary
