"""Decode labelled image splits of every supported source into uint8 tensors, through one
interface: whole splits into memory, or one image at a time from an image folder.

What each source holds (labels, class names, the torchvision layouts) is read by
:mod:`siamcollapse.data.catalog`, without torch; the images come in its sample order, which
subset index files refer to. Nothing here ever downloads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from siamcollapse.data.augment import eval_resize_side
from siamcollapse.data.catalog import TORCHVISION_LAYOUTS, check_source, check_split, read_torchvision
from siamcollapse.data.folders import FOLDER_SOURCES, scan_image_folder
from siamcollapse.errors import UserInputError
from siamcollapse.progress import report as report_progress


@dataclass
class LabeledImages:
    """A fully decoded split: uint8 images [N,3,H,W], int64 labels [N], class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# --------------------------------------------------------------------------- image folders


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
    if name not in TORCHVISION_LAYOUTS:
        raise UserInputError(
            f"Unknown torchvision dataset {name!r}: use one of {', '.join(TORCHVISION_LAYOUTS)}."
        )
    array, labels, classes = read_torchvision(name, root, split, with_images=True)
    images = resize_uint8(torch.from_numpy(np.ascontiguousarray(array)), image_size)
    return LabeledImages(images, torch.tensor(labels, dtype=torch.int64), classes)


# --------------------------------------------------------------------------- dispatch


def load_split(
    source: str, root: Path, split: str, image_size: int, progress: bool = True, val_classes: str = "same"
) -> LabeledImages:
    """Decode one split (``train`` or ``val``) of any supported source into memory
    (``val_classes``: see ``folders.scan_image_folder``)."""
    check_source(source, root)
    check_split(split)
    if source in FOLDER_SOURCES:
        return load_image_folder(root, split, image_size, progress=progress, val_classes=val_classes)
    return load_torchvision(source, root, split, image_size)


def decode_images(root: Path, split: str, image_size: int, indices: np.ndarray,
                  for_training: bool = False) -> torch.Tensor | list[torch.Tensor]:
    """The uint8 images at ``indices`` of an image-folder split, decoded one by one (for data too
    large to hold in memory): at the evaluation transform (one [n,3,S,S] tensor), or
    ``for_training`` at the training resize (a list: sizes differ, crops come later)."""
    transform = shorter_side_resize(train_resize_side(image_size)) if for_training else None
    stream = ImageFolderStream(root, split, image_size, transform=transform)
    images = [stream[int(i)][0] for i in indices]
    return images if for_training else torch.stack(images)
