"""What a data source holds, without decoding an image or importing torch: each split's labels
in sample order, its class names and size, and the torchvision on-disk layouts (read with NumPy).

Sources: ``embedded`` (the procedural dataset of :mod:`siamcollapse.data.embedded`),
``imagefolder`` (``root/<split>/<class>/<image>``), and the files torchvision writes for
``cifar10``, ``cifar100`` and ``stl10``. Nothing here ever downloads, so a missing dataset fails
fast with a message saying where it was expected and how to obtain it. The sample order
(classes sorted by name, files sorted by name within a class; file order for torchvision
sources) defines the sample indices that subset index files refer to, so it must stay
deterministic. :mod:`siamcollapse.data.sources` decodes the images in the same order.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from siamcollapse.data.folders import FOLDER_SOURCES, SPLITS, scan_image_folder
from siamcollapse.errors import UserInputError

TORCHVISION_SOURCES = ("cifar10", "cifar100", "stl10")
SOURCES = FOLDER_SOURCES + TORCHVISION_SOURCES

_NEVER_DOWNLOADS = (
    "The pipeline never downloads data: fetch it once on a machine with internet access "
    "(e.g. `torchvision.datasets.{cls}(root, download=True)`) and copy the folder here, "
    "or point the data root at the folder that contains it."
)


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserInputError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")



@dataclass(frozen=True)
class _TorchvisionLayout:
    """Where torchvision puts one dataset's files under its root, and its class name."""

    folder: str
    cls: str
    files: dict[str, tuple[str, ...]]
    meta: str


TORCHVISION_LAYOUTS = {
    "cifar10": _TorchvisionLayout(
        "cifar-10-batches-py",
        "CIFAR10",
        {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "val": ("test_batch",)},
        "batches.meta",
    ),
    "cifar100": _TorchvisionLayout(
        "cifar-100-python", "CIFAR100", {"train": ("train",), "val": ("test",)}, "meta"
    ),
    "stl10": _TorchvisionLayout(
        "stl10_binary",
        "STL10",
        {"train": ("train_X.bin", "train_y.bin"), "val": ("test_X.bin", "test_y.bin")},
        "class_names.txt",
    ),
}


def _layout_files(name: str, root: Path, split: str) -> tuple[list[Path], Path]:
    """Paths of the split's files and the metadata file, checked to exist."""
    layout = TORCHVISION_LAYOUTS[name]
    folder = Path(root) / layout.folder
    paths = [folder / f for f in layout.files[split]]
    meta = folder / layout.meta
    missing = [p for p in [*paths, meta] if not p.is_file()]
    if missing:
        raise UserInputError(
            f"{name} not found under data root {root}: expected sub-folder {folder} with "
            f"{', '.join(p.name for p in missing)}. " + _NEVER_DOWNLOADS.format(cls=layout.cls)
        )
    return paths, meta


def _str_keys(obj: dict) -> dict[str, Any]:
    """CIFAR pickles come from Python 2: keys may be bytes or str depending on encoding."""
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return _str_keys(pickle.load(f, encoding="latin1"))
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, AttributeError) as exc:
        raise UserInputError(f"Cannot read {path}: {exc}. Re-fetch the dataset.") from exc


def _names(values: list) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _cifar_keys(name: str) -> tuple[str, str]:
    """(label key in batches, class-name key in meta)."""
    return ("labels", "label_names") if name == "cifar10" else ("fine_labels", "fine_label_names")


def _read_cifar(
    name: str, root: Path, split: str, with_images: bool
) -> tuple[np.ndarray | None, list[int], list[str]]:
    paths, meta = _layout_files(name, root, split)
    label_key, names_key = _cifar_keys(name)
    images: list[np.ndarray] = []
    labels: list[int] = []
    for path in paths:
        batch = _unpickle(path)
        if "data" not in batch or label_key not in batch:
            raise UserInputError(f"{path} lacks 'data' or {label_key!r}: re-fetch {name}.")
        labels.extend(int(v) for v in batch[label_key])
        if with_images:
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
    classes = _names(_unpickle(meta).get(names_key, []))
    return (np.concatenate(images) if with_images else None), labels, classes


def _read_stl10(
    root: Path, split: str, with_images: bool
) -> tuple[np.ndarray | None, list[int], list[str]]:
    (x_path, y_path), meta = _layout_files("stl10", root, split)
    labels = (np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1).tolist()
    classes = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
    images = None
    if with_images:
        # Stored column-major per channel (as torchvision reads it): transpose H and W.
        raw = np.fromfile(x_path, dtype=np.uint8)
        if raw.size != len(labels) * 3 * 96 * 96:
            raise UserInputError(f"{x_path} size does not match {y_path}: re-fetch stl10.")
        images = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    return images, labels, classes


def read_torchvision(
    name: str, root: Path, split: str, with_images: bool
) -> tuple[np.ndarray | None, list[int], list[str]]:
    check_split(split)
    if name == "stl10":
        return _read_stl10(root, split, with_images)
    return _read_cifar(name, root, split, with_images)


def check_source(source: str, root: Path) -> None:
    if source not in SOURCES:
        raise UserInputError(f"Unknown data source {source!r}: use one of {', '.join(SOURCES)}.")
    marker = Path(root) / "dataset.json"
    if source == "embedded" and Path(root).is_dir() and not marker.is_file():
        raise UserInputError(
            f"{root} is not a complete embedded dataset (no {marker}): delete it, and the workflow's "
            "prepare_data stage generates it again; or use source 'imagefolder' for your own images."
        )


def scan_labels(source: str, root: Path, split: str, val_classes: str = "same") -> tuple[list[int], list[str]]:
    """Per-sample labels in index order plus class names, without decoding any image."""
    check_source(source, root)
    check_split(split)
    if source in FOLDER_SOURCES:
        _, labels, classes = scan_image_folder(root, split, val_classes)
        return labels, classes
    _, labels, classes = read_torchvision(source, root, split, with_images=False)
    return labels, classes


def count_split(source: str, root: Path, split: str) -> int:
    """Number of samples in a split (no decoding)."""
    return len(scan_labels(source, root, split)[0])


def evaluation_data(dataset: dict[str, Any]) -> dict[str, Any]:
    """What an evaluation stage reads of the config's ``dataset`` besides its root: the source,
    the image size, in memory or streamed, and how val's classes may differ from train's."""
    return {key: dataset[key] for key in ("source", "image_size", "in_memory", "val_classes")}


def class_names(source: str, root: Path, split: str) -> list[str]:
    """Class names of a split, index = label (no decoding)."""
    return scan_labels(source, root, split)[1]
