"""The paper's linear evaluation protocol: augmented images through the frozen backbone.

As in the SimSiam / MoCo-v3 authors' ``main_lincls``: the backbone stays in eval mode (its
BatchNorm statistics frozen too) and runs under ``torch.no_grad()``, so every step costs one
forward; one linear layer on its output (weights N(0, 0.01), bias 0) is trained with LARS over
weight and bias alike (apex's LARC as the authors use it; momentum 0.9), lr = lr x batch / 256
with cosine decay per epoch. Unlike the authors we report the last epoch, never the best val one. Each step sees a fresh
random resized crop (scale 0.08-1) + horizontal flip of every image and nothing else; top-1
(and top-5 when there are more than 5 classes) is measured on un-augmented images with the
feature-extraction preprocessing. The backbone's fingerprint must be the same afterwards
(the SimSiam sanity check); a difference is an error, never a result.

Small datasets are cropped batched on the device (``BatchAugment``); large ones are decoded
and cropped per image in DataLoader workers, so only small crops travel to the device.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Resize

from ..data.augment import AugmentConfig, BatchAugment, eval_resize_side, eval_transform
from ..data.catalog import scan_labels
from ..data.sources import ImageFolderStream, load_split
from ..fingerprint import state_fingerprint
from ..optim.optimizers import LARS
from ..optim.schedules import apply_lr, cosine_lr, scaled_lr
from .features import MEAN, STD, _image_batches

CROP_MIN_SCALE = 0.08  # main_lincls' RandomResizedCrop(224) default scale (0.08, 1)
# Crop + flip only: every colour and blur probability is 0 (and ``crop_batch`` never calls
# ``BatchAugment.colour``), normalised like feature extraction.
PROBE_AUGMENT = AugmentConfig(crop_scale=(CROP_MIN_SCALE, 1.0), flip_p=0.5, jitter_p=0.0, grayscale_p=0.0,
                              blur_p=0.0, mean=MEAN, std=STD)
MOMENTUM = 0.9
TOP5_MIN_CLASSES = 6  # top-5 is reported only when it is not trivially 100%


def probe_augment(image_size: int) -> BatchAugment:
    """The probe's training augmentation (``PROBE_AUGMENT``) producing ``image_size`` crops."""
    return BatchAugment(PROBE_AUGMENT, image_size)


def crop_batch(augment: BatchAugment, images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 [B,3,H,W] -> normalised float [B,3,S,S]: random resized crop + flip, no colour ops."""
    return augment.normalize(augment.crop_and_flip(images_uint8, generator))


def init_head(feature_dim: int, num_classes: int, generator: torch.Generator) -> nn.Linear:
    """The probe: one linear layer, weights N(0, 0.01) (std 0.01), bias 0."""
    head = nn.Linear(feature_dim, num_classes)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.01)
        head.bias.zero_()
    return head


class CropBatches(Protocol):
    """One epoch of augmented training batches: normalised inputs and labels, on the device."""

    count: int

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class InMemoryCrops:
    """Small datasets: uint8 images kept on the device, cropped batched there."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, image_size: int, batch_size: int,
                 device: torch.device) -> None:
        self.images, self.labels = images.to(device), labels.to(device)  # a no-op on CPU
        self.augment, self.batch_size, self.count = probe_augment(image_size), batch_size, len(labels)

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in torch.randperm(self.count, generator=generator).split(self.batch_size):
            batch = batch.to(self.images.device)
            yield crop_batch(self.augment, self.images[batch], generator), self.labels[batch]


class _CropFlipImages(Dataset):
    """Per image, in a worker: decode (shorter side resized to 256/224 of the input size, so the
    crop is taken from the whole image), one random resized crop + flip, returned as uint8 to keep the
    transfer small. Keys are (index, seed) so a seeded run is reproducible with any worker count."""

    def __init__(self, stream: ImageFolderStream, augment: BatchAugment) -> None:
        self.stream, self.augment = stream, augment

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, seed = key
        image, label = self.stream[index]
        crop = self.augment.crop_and_flip(image[None], torch.Generator().manual_seed(seed))[0]
        return crop.mul(255).round_().to(torch.uint8), label


class StreamingCrops:
    """Large datasets: decoded and cropped by ``num_workers`` DataLoader workers."""

    def __init__(self, root: Path, image_size: int, batch_size: int, num_workers: int, device: torch.device) -> None:
        # Crops come from the whole image with its shorter side at 256/224 of the input (256 for 224),
        # as the pretraining loop's; the authors crop the full-resolution image.
        stream = ImageFolderStream(root, "train", image_size, transform=Resize(eval_resize_side(image_size)))
        self.augment = probe_augment(image_size)
        self.dataset = _CropFlipImages(stream, self.augment)
        self.batch_size, self.num_workers, self.device, self.count = batch_size, num_workers, device, len(stream)

    def epoch(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        salt = int(torch.randint(0, 2**31 - self.count, (1,), generator=generator))
        order = torch.randperm(self.count, generator=generator).tolist()
        keyed = [[(i, salt + start + j) for j, i in enumerate(order[start:start + self.batch_size])]
                 for start in range(0, self.count, self.batch_size)]
        loader = DataLoader(self.dataset, batch_sampler=keyed, num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda")
        for crops, labels in loader:
            crops = crops.to(self.device, non_blocking=True).float().div_(255)
            yield self.augment.normalize(crops), labels.to(self.device, non_blocking=True)


def _autocast(device: torch.device) -> torch.autocast:
    """bf16 on CUDA (as the pretraining loop), plain fp32 elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _features(backbone: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Frozen backbone forward (no graph), returned as fp32 for the head."""
    if inputs.device.type == "cuda":
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), _autocast(inputs.device):
        return backbone(inputs).float()


def probe_optimizer(head: nn.Linear, settings: dict[str, Any], batch_size: int) -> LARS:
    """LARS over the head only: momentum 0.9, the config's weight decay, lr = lr x batch_size / 256.

    LARS moves every parameter, the bias included (apex LARC adapts all of them in the authors'
    ``main_lincls``), by ``lr x 0.001 x |p|`` per step (its trust ratio); a parameter that is
    still all zero (the bias at the first step) takes a plain SGD step.
    """
    return LARS(head.parameters(), lr=scaled_lr(settings["lr"], batch_size), weight_decay=settings["weight_decay"],
                momentum=MOMENTUM, exclude_1d=False)


def probe_step(backbone: nn.Module, head: nn.Linear, optimizer: torch.optim.Optimizer, inputs: torch.Tensor,
               labels: torch.Tensor) -> torch.Tensor:
    """One training step of the head on a batch; returns the (detached) cross-entropy."""
    loss = F.cross_entropy(head(_features(backbone, inputs)), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_augmented_probe(backbone: nn.Module, train: CropBatches, num_classes: int, settings: dict[str, Any],
                          device: torch.device) -> nn.Linear:
    """Train the linear head on augmented batches of the frozen ``backbone`` (see module doc).

    ``settings``: the config's ``linear_probe`` section (lr, epochs, batch_size, weight_decay,
    seed). The backbone is left in eval mode; ``RuntimeError`` if any of its parameters or
    buffers changed.
    """
    backbone.eval()  # BN uses (and keeps) its running statistics
    before = state_fingerprint(backbone)
    generator = torch.Generator().manual_seed(settings["seed"])
    head = init_head(backbone.feature_dim, num_classes, generator).to(device)
    optimizer = probe_optimizer(head, settings, min(settings["batch_size"], train.count))
    initial_lr = optimizer.defaults["lr"]
    for epoch in range(settings["epochs"]):
        lr = cosine_lr(initial_lr, epoch, settings["epochs"])  # per epoch, no warmup, as main_lincls
        apply_lr(optimizer, lr, initial_lr)
        tic, loss_sum, steps = time.time(), torch.zeros((), device=device), 0
        for inputs, labels in train.epoch(generator):
            loss_sum += probe_step(backbone, head, optimizer, inputs, labels)
            steps += 1
        rate = train.count / max(time.time() - tic, 1e-9)
        print(f"probe epoch {epoch + 1}/{settings['epochs']}  loss {float(loss_sum) / max(steps, 1):.4f}  "
              f"lr {lr:.4g}  {rate:.0f} images/s", flush=True)
    check_unchanged(backbone, before)
    return head


def check_unchanged(backbone: nn.Module, fingerprint: str) -> None:
    """The SimSiam sanity check: the frozen backbone must be bit-identical after probing."""
    if state_fingerprint(backbone) != fingerprint:
        raise RuntimeError("the backbone changed during linear probing: its weights or BatchNorm statistics "
                           "were modified, so the probe did not evaluate a frozen representation")


@torch.no_grad()
def evaluate(backbone: nn.Module, head: nn.Linear, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
             image_size: int, device: torch.device) -> dict[str, float]:
    """Top-1 (and top-5 with more than 5 classes) in % on un-augmented uint8 batches."""
    backbone.eval()
    top5 = head.out_features >= TOP5_MIN_CLASSES
    hits1 = hits5 = total = 0
    for images, labels in batches:
        logits = head(_features(backbone, eval_transform(images.to(device), image_size, MEAN, STD)))
        labels = labels.to(device)
        ranked = logits.topk(5 if top5 else 1, dim=1).indices
        hits1 += int((ranked[:, 0] == labels).sum())
        hits5 += int((ranked == labels[:, None]).any(dim=1).sum()) if top5 else 0
        total += len(labels)
    result = {"top1": 100.0 * hits1 / total}
    if top5:
        result["top5"] = 100.0 * hits5 / total
    return result


def _train_batches(data: dict[str, Any], root: Path, batch_size: int, num_workers: int,
                   device: torch.device) -> CropBatches:
    if data["in_memory"]:
        train = load_split(data["source"], root, "train", data["image_size"])
        return InMemoryCrops(train.images, train.labels, data["image_size"], batch_size, device)
    return StreamingCrops(root, data["image_size"], batch_size, num_workers, device)


def run_augmented_probe(backbone: nn.Module, data: dict[str, Any], root: Path, settings: dict[str, Any],
                        eval_batch_size: int, num_workers: int) -> dict[str, Any]:
    """Probe ``backbone`` on the dataset at ``root``; returns the metrics.

    ``data``: ``catalog.evaluation_data`` of the config's ``dataset``. Keys: linear_top1,
    linear_train_top1 (un-augmented training images), linear_top5 (more than 5 classes only),
    backbone_unchanged, backbone_fingerprint.
    """
    num_classes = 1 + max(scan_labels(data["source"], root, "train")[0])  # val's labels are train's classes
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = backbone.to(device)
    if device.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)
    fingerprint = state_fingerprint(backbone)
    train = _train_batches(data, root, settings["batch_size"], num_workers, device)
    print(f"augmented linear probe: {train.count} training images, {num_classes} classes, "
          f"{settings['epochs']} epochs, batch {min(settings['batch_size'], train.count)} on {device}", flush=True)
    head = train_augmented_probe(backbone, train, num_classes, settings, device)

    def split_metrics(split: str) -> dict[str, float]:
        _, batches = _image_batches(data, root, split, eval_batch_size, num_workers)
        return evaluate(backbone, head, batches, data["image_size"], device)

    val, train_eval = split_metrics("val"), split_metrics("train")
    check_unchanged(backbone, fingerprint)
    result = {"linear_top1": val["top1"], "linear_train_top1": train_eval["top1"],
              "backbone_unchanged": True, "backbone_fingerprint": fingerprint}
    if "top5" in val:
        result["linear_top5"] = val["top5"]
    return result
