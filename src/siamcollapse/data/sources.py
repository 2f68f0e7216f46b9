"""Load labelled image splits from every supported source through one interface.

Sources: ``embedded`` (the procedural dataset of :mod:`siamcollapse.data.embedded`),
``imagefolder`` (``root/<split>/<class>/<image>``), and the torchvision on-disk layouts of
``cifar10``, ``cifar100`` and ``stl10``. Nothing here ever downloads: the torchvision
files are read directly (same layout torchvision writes), so a missing dataset fails fast
with a message saying where it was expected and how to obtain it.

The sample order returned here (classes sorted by name, files sorted by name within a
class; file order for torchvision sources) defines the sample indices that subset index
files refer to, so it must stay deterministic.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from siamcollapse.data.augment import eval_resize_side
from siamcollapse.data.folders import FOLDER_SOURCES, SPLITS, scan_image_folder
from siamcollapse.errors import UserInputError
from siamcollapse.progress import report as report_progress

TORCHVISION_SOURCES = ("cifar10", "cifar100", "stl10")
SOURCES = FOLDER_SOURCES + TORCHVISION_SOURCES

_NEVER_DOWNLOADS = (
    "The pipeline never downloads data: fetch it once on a machine with internet access "
    "(e.g. `torchvision.datasets.{cls}(root, download=True)`) and copy the folder here, "
    "or point the data root at the folder that contains it."
)


@dataclass
class LabeledImages:
    """A fully decoded split: uint8 images [N,3,H,W], int64 labels [N], class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# --------------------------------------------------------------------------- image folders


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise UserInputError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")


def resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    """The authors' evaluation transform, Resize(256) + CenterCrop(224) at any size: the shorter
    side to ``size x 256/224`` (bicubic, antialiased), then the central ``size`` x ``size`` crop.
    An image already ``size`` x ``size`` is returned as is."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = eval_resize_side(size) / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return image.crop((left, top, left + size, top + size))


def train_resize_side(image_size: int) -> int:
    """The shorter side of a streamed training image before its random crops: 8/7 of the input
    size, rounded down (256 for 224, as ImageNet's evaluation resize)."""
    return image_size * 8 // 7


def shorter_side_resize(size: int) -> Callable[[Image.Image], Image.Image]:
    """Resize so the shorter side is ``size`` (bilinear), keeping the whole image: training crops
    are taken from all of it, not from a centre crop."""

    def resize(image: Image.Image) -> Image.Image:
        scale = size / min(image.size)
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)

    return resize


def _open_rgb(path: Path) -> Image.Image:
    """Decode one file to RGB; an unreadable file is a user error naming the file."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UserInputError(
            f"Cannot read image {path}: {exc}. Replace or delete the corrupt file."
        ) from exc


def _to_chw_tensor(array: np.ndarray) -> torch.Tensor:
    """HWC (or NHWC) uint8 numpy -> CHW (NCHW) contiguous uint8 tensor."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor.movedim(-1, -3).contiguous()


def load_image_folder(
    root: Path, split: str, image_size: int, progress: bool = True, val_classes: str = "same"
) -> LabeledImages:
    """Decode a whole image-folder split into memory (small datasets: CIFAR-sized or less)."""
    files, labels, classes = scan_image_folder(root, split, val_classes)
    out = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    for i, path in enumerate(files):
        out[i] = np.asarray(resize_center_crop(_open_rgb(path), image_size))
        if progress:
            report_progress(f"decode {Path(root).name}/{split}", i + 1, len(files))
    return LabeledImages(_to_chw_tensor(out), torch.tensor(labels, dtype=torch.int64), classes)


class ImageFolderStream(torch.utils.data.Dataset):
    """Lazily decoded image folder for datasets too large for memory (ImageNet)."""

    def __init__(
        self,
        root: Path,
        split: str,
        image_size: int,
        transform: Callable[[Image.Image], Image.Image] | None = None,
        val_classes: str = "same",
    ) -> None:
        self.files, self.labels, self.classes = scan_image_folder(root, split, val_classes)
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = _open_rgb(self.files[index])
        if self.transform is None:
            image = resize_center_crop(image, self.image_size)
        else:
            image = self.transform(image)
        return _to_chw_tensor(np.array(image)), self.labels[index]


# --------------------------------------------------------------------------- torchvision


@dataclass(frozen=True)
class _TorchvisionLayout:
    """Where torchvision puts one dataset's files under its root, and its class name."""

    folder: str
    cls: str
    files: dict[str, tuple[str, ...]]
    meta: str


_LAYOUTS = {
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
    layout = _LAYOUTS[name]
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


def _read_torchvision(
    name: str, root: Path, split: str, with_images: bool
) -> tuple[np.ndarray | None, list[int], list[str]]:
    _check_split(split)
    if name == "stl10":
        return _read_stl10(root, split, with_images)
    return _read_cifar(name, root, split, with_images)


def resize_uint8(images: torch.Tensor, size: int, chunk: int = 1024) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 NCHW images, in chunks to bound float memory."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].float()
        resized = F.interpolate(
            part, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out[start : start + chunk] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


def load_torchvision(name: str, root: Path, split: str, image_size: int) -> LabeledImages:
    """Read a torchvision dataset already on disk (never downloads); ``val`` is its test set."""
    if name not in _LAYOUTS:
        raise UserInputError(
            f"Unknown torchvision dataset {name!r}: use one of {', '.join(_LAYOUTS)}."
        )
    array, labels, classes = _read_torchvision(name, root, split, with_images=True)
    images = resize_uint8(torch.from_numpy(np.ascontiguousarray(array)), image_size)
    return LabeledImages(images, torch.tensor(labels, dtype=torch.int64), classes)


# --------------------------------------------------------------------------- dispatch


def _check_source(source: str, root: Path) -> None:
    if source not in SOURCES:
        raise UserInputError(f"Unknown data source {source!r}: use one of {', '.join(SOURCES)}.")
    marker = Path(root) / "dataset.json"
    if source == "embedded" and Path(root).is_dir() and not marker.is_file():
        raise UserInputError(
            f"{root} is not a complete embedded dataset (no {marker}): delete it, and the workflow's "
            "prepare_data stage generates it again; or use source 'imagefolder' for your own images."
        )


def load_split(
    source: str, root: Path, split: str, image_size: int, progress: bool = True, val_classes: str = "same"
) -> LabeledImages:
    """Decode one split (``train`` or ``val``) of any supported source into memory
    (``val_classes``: see ``folders.scan_image_folder``)."""
    _check_source(source, root)
    _check_split(split)
    if source in FOLDER_SOURCES:
        return load_image_folder(root, split, image_size, progress=progress, val_classes=val_classes)
    return load_torchvision(source, root, split, image_size)


def scan_labels(source: str, root: Path, split: str, val_classes: str = "same") -> tuple[list[int], list[str]]:
    """Per-sample labels in index order plus class names, without decoding any image."""
    _check_source(source, root)
    _check_split(split)
    if source in FOLDER_SOURCES:
        _, labels, classes = scan_image_folder(root, split, val_classes)
        return labels, classes
    _, labels, classes = _read_torchvision(source, root, split, with_images=False)
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


def decode_images(root: Path, split: str, image_size: int, indices: np.ndarray,
                  for_training: bool = False) -> torch.Tensor | list[torch.Tensor]:
    """The uint8 images at ``indices`` of an image-folder split, decoded one by one (for data too
    large to hold in memory): at the evaluation transform (one [n,3,S,S] tensor), or
    ``for_training`` at the training resize (a list: sizes differ, crops come later)."""
    transform = shorter_side_resize(train_resize_side(image_size)) if for_training else None
    stream = ImageFolderStream(root, split, image_size, transform=transform)
    images = [stream[int(i)][0] for i in indices]
    return images if for_training else torch.stack(images)
