"""Batches of augmented view pairs for pretraining.

Two ways to feed the training device, behind one interface (``pairs(batches, seeds)``: one
index batch and one seed per step, so a run can resume at any step without replaying the
epoch, and a share of the global batch per process):

* ``InMemoryPairs`` — small datasets live in memory as one uint8 tensor (on the training
  device when it is a GPU); crops, flips, colour and blur run batched there. Nothing waits on
  a per-image PIL pipeline.
* ``StreamingPairs`` — large datasets (ImageNet) are decoded from disk by DataLoader workers,
  which also do the per-image random resized crop and flip (so only small crops travel);
  the colour part of the augmentation then runs batched on the device.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import UserInputError
from .augment import WHOLE_BATCH, AugmentConfig, BatchAugment, BatchShare, on_device

# Config keys that may hold one value for both views or a [view 1, view 2] pair.
PER_VIEW_KEYS = ("crop_min_scale", "jitter_p", "saturation", "grayscale_p", "blur_p", "solarize_p", "flip_p")
# Defaults of the keys added with per-view augmentation, for settings written before them.
_LATER_DEFAULTS = {"saturation": 0.4, "solarize_p": 0.0, "blur_sigma_scaled": True}


def _per_view(settings: dict, key: str) -> tuple[float, float]:
    value = settings.get(key, _LATER_DEFAULTS.get(key))
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise UserInputError(f"augment.{key} must be one number or a [view 1, view 2] pair, got {value}")
        return float(value[0]), float(value[1])
    return float(value), float(value)


def augment_config(settings: dict) -> tuple[AugmentConfig, AugmentConfig]:
    """The augmentation of each view (view 1's, view 2's) with the config's ``augment`` keys applied.

    Every key in ``PER_VIEW_KEYS`` is one value for both views or a ``[view 1, view 2]`` pair
    (MoCo-v3's and BYOL's asymmetric views: ``blur_p: [1.0, 0.1]``, ``solarize_p: [0.0, 0.2]``).
    """
    values = {key: _per_view(settings, key) for key in PER_VIEW_KEYS}
    scaled = settings.get("blur_sigma_scaled", _LATER_DEFAULTS["blur_sigma_scaled"])
    return tuple(
        AugmentConfig(
            crop_scale=(values["crop_min_scale"][view], 1.0),
            jitter_p=values["jitter_p"][view],
            saturation=values["saturation"][view],
            grayscale_p=values["grayscale_p"][view],
            blur_p=values["blur_p"][view],
            blur_sigma_reference=AugmentConfig.blur_sigma_reference if scaled else None,
            solarize_p=values["solarize_p"][view],
            flip_p=values["flip_p"][view],
        )
        for view in (0, 1)
    )


class InMemoryPairs:
    def __init__(self, images: torch.Tensor, augment: BatchAugment, device: torch.device,
                 share: BatchShare = WHOLE_BATCH) -> None:
        # Keep images on the device only when it is an accelerator: on CPU this is a no-op.
        self.images = images.to(device)
        self.augment, self.device, self.share = augment, device, share

    def pairs(self, batches: torch.Tensor, seeds: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch, seed in zip(batches, seeds, strict=True):
            images = self.images[on_device(batch, self.images)]
            generator = torch.Generator().manual_seed(seed)
            yield (self.augment(images, generator, self.share, view=0),
                   self.augment(images, generator, self.share, view=1))


class _TwoCrops(Dataset):
    """Per-image: decode, then two independent random resized crops + flips, as uint8 tensors."""

    def __init__(self, stream: Dataset, augment: BatchAugment) -> None:
        self.stream, self.augment = stream, augment

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        index, salt = key
        image, _ = self.stream[index]
        generator = torch.Generator().manual_seed(salt)
        views = [self.augment.crop_and_flip(image[None], generator, view=view)[0] for view in (0, 1)]
        return tuple((v * 255).round().to(torch.uint8) for v in views)


class StreamingPairs:
    def __init__(self, stream: Dataset, augment: BatchAugment, device: torch.device, num_workers: int,
                 share: BatchShare = WHOLE_BATCH) -> None:
        self.dataset = _TwoCrops(stream, augment)
        self.augment, self.device, self.num_workers, self.share = augment, device, num_workers, share

    def pairs(self, batches: torch.Tensor, seeds: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # An image's crops are seeded by the step and its row in the global batch, not by process.
        first_row = self.share.rank * batches.shape[1]
        keyed = [[(int(i), _row_seed(seed, first_row + j)) for j, i in enumerate(batch)]
                 for batch, seed in zip(batches, seeds, strict=True)]
        loader = DataLoader(self.dataset, batch_sampler=keyed, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False)
        for (crops1, crops2), seed in zip(loader, seeds):
            generator = torch.Generator().manual_seed(seed)
            yield tuple(self._finish(c, generator, view) for view, c in enumerate((crops1, crops2)))

    def _finish(self, crops: torch.Tensor, generator: torch.Generator, view: int) -> torch.Tensor:
        crops = crops.to(self.device, non_blocking=True).float().div_(255)
        return self.augment.normalize(self.augment.colour(crops, generator, self.share, view))


def _row_seed(step_seed: int, row: int) -> int:
    return (step_seed * 1_000_003 + row) % 2**63
