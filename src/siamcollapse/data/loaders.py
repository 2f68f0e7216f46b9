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

from .augment import WHOLE_BATCH, AugmentConfig, BatchAugment, BatchShare


def augment_config(settings: dict) -> AugmentConfig:
    """The MoCo-v2 augmentation with the config's ``augment`` keys applied."""
    return AugmentConfig(
        crop_scale=(settings["crop_min_scale"], 1.0),
        jitter_p=settings["jitter_p"],
        grayscale_p=settings["grayscale_p"],
        blur_p=settings["blur_p"],
        flip_p=settings["flip_p"],
    )


class InMemoryPairs:
    def __init__(self, images: torch.Tensor, augment: BatchAugment, device: torch.device,
                 share: BatchShare = WHOLE_BATCH) -> None:
        # Keep images on the device only when it is an accelerator: on CPU this is a no-op.
        self.images = images.to(device)
        self.augment, self.device, self.share = augment, device, share

    def pairs(self, batches: torch.Tensor, seeds: list[int]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch, seed in zip(batches, seeds, strict=True):
            images = self.images[batch.to(self.images.device)]
            generator = torch.Generator().manual_seed(seed)
            yield self.augment(images, generator, self.share), self.augment(images, generator, self.share)


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
        views = [self.augment.crop_and_flip(image[None], generator)[0] for _ in range(2)]
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
            yield tuple(self._finish(c, generator) for c in (crops1, crops2))

    def _finish(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        crops = crops.to(self.device, non_blocking=True).float().div_(255)
        return self.augment.normalize(self.augment.colour(crops, generator, self.share))


def _row_seed(step_seed: int, row: int) -> int:
    return (step_seed * 1_000_003 + row) % 2**63
