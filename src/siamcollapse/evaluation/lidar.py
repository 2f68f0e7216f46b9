"""LiDAR of a backbone (Thilak et al. 2024): its embeddings of n images under q augmented views.

The images are a fixed sample of the training set (``data.subsets.fixed_sample``, seed 0); the
views are drawn with the run's own training augmentation, alternating its view-1 and view-2
settings (MoCo-v3's and BYOL's differ), from a seeded generator, batched on the backbone's
device. ``metrics.lidar`` turns the n x q x d embeddings into the number.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.augment import BatchAugment
from ..metrics import lidar


def _crops(images: torch.Tensor | list[torch.Tensor], augment: BatchAugment, generator: torch.Generator,
           view: int, device: torch.device) -> torch.Tensor:
    """Random resized crops + flips (float in [0, 1]) of a batch: one tensor, or images of
    different sizes (streamed data) cropped one by one."""
    if isinstance(images, torch.Tensor):
        return augment.crop_and_flip(images.to(device), generator, view=view)
    return torch.cat([augment.crop_and_flip(image[None].to(device), generator, view=view) for image in images])


@torch.no_grad()
def augmented_embeddings(backbone: torch.nn.Module, images: torch.Tensor | list[torch.Tensor], augment: BatchAugment,
                         views: int, batch_size: int, device: torch.device, seed: int = 0) -> torch.Tensor:
    """float32 [n, views, d] on the CPU: ``backbone`` (in eval mode) on ``views`` augmentations of each image."""
    generator = torch.Generator().manual_seed(seed)
    per_batch = max(1, batch_size // views)  # about batch_size forward passes per batch
    out = torch.empty(len(images), views, backbone.feature_dim)
    for start in range(0, len(images), per_batch):
        chunk = images[start:start + per_batch]
        for view in range(views):
            side = view % 2
            x = augment.colour(_crops(chunk, augment, generator, side, device), generator, view=side)
            out[start:start + len(chunk), view] = backbone(augment.normalize(x)).float().cpu()
    return out


def lidar_of_embeddings(embeddings: torch.Tensor) -> dict[str, float]:
    """LiDAR of the raw embeddings and of their L2-normalised versions (the authors' ``--normalize``)."""
    return {"lidar": lidar(embeddings.double().numpy()),
            "lidar_l2": lidar(F.normalize(embeddings.double(), dim=-1).numpy())}
