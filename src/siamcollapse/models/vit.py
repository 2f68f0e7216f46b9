"""ViT-Small backbone (torchvision's VisionTransformer without its classification head).

ViT-Small has a 384-d token width and a 1536-d MLP (4x); the authors' (MoCo-v3's ``vits.py``) has
12 blocks and 12 heads, and the paper also tries shallower (6, 3 blocks) and fewer-head variants.
As in MoCo-v3 the position embedding is fixed, not learned: a 2-D sin-cos embedding of each
patch's row and column (a zero vector for the CLS token), kept in a buffer. The representation is
the CLS token after the encoder's final LayerNorm, so ``forward`` returns a (batch, 384) tensor.
Following MoCo-v3, the random patch projection can be kept frozen, which stabilises training.
The other weights keep torchvision's initialisation (MoCo-v3 re-initialises them, e.g. Xavier).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

HIDDEN_DIM = 384
MLP_DIM = 4 * HIDDEN_DIM
SINCOS_TEMPERATURE = 10000.0  # MoCo-v3's (and the Transformer's) frequency base


def sincos_position_embedding(grid: int, dim: int) -> torch.Tensor:
    """[1, 1 + grid * grid, dim]: zeros for the CLS token, then per patch (row-major, as the patch
    sequence) sin and cos of its row and of its column at ``dim / 4`` geometric frequencies."""
    if dim % 4:
        raise ValueError(f"a 2-D sin-cos position embedding needs a width divisible by 4, got {dim}")
    quarter = dim // 4
    frequencies = SINCOS_TEMPERATURE ** -(torch.arange(quarter, dtype=torch.float64) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")
    row_angles = rows.reshape(-1, 1) * frequencies
    col_angles = cols.reshape(-1, 1) * frequencies
    patches = torch.cat([row_angles.sin(), row_angles.cos(), col_angles.sin(), col_angles.cos()], dim=1)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), patches]).float()[None]


class ViTSmall(VisionTransformer):
    """ViT-Small whose forward gives the final-LayerNorm CLS token; ``.feature_dim`` = 384."""

    def __init__(self, image_size: int, patch_size: int, depth: int, heads: int) -> None:
        super().__init__(image_size=image_size, patch_size=patch_size, num_layers=depth, num_heads=heads,
                         hidden_dim=HIDDEN_DIM, mlp_dim=MLP_DIM)
        self.heads = nn.Identity()  # drop the classifier: the CLS token itself is the representation
        self.feature_dim = HIDDEN_DIM
        # Fixed sin-cos embedding instead of torchvision's learned one; a buffer, so it is saved
        # with the weights but never trained.
        del self.encoder.pos_embedding
        self.encoder.register_buffer("pos_embedding", sincos_position_embedding(image_size // patch_size, HIDDEN_DIM))

    def freeze_patch_embed(self) -> None:
        """Stop training the patch projection (weights and bias keep their random init)."""
        self.conv_proj.requires_grad_(False)


def check_vit_shape(image_size: int, patch_size: int, heads: int) -> None:
    """Raise ValueError, naming the config key, when the image does not tile or the heads do not divide 384."""
    if image_size % patch_size:
        raise ValueError(f"model.image_size {image_size} is not a multiple of model.patch_size {patch_size}")
    if HIDDEN_DIM % heads:
        raise ValueError(f"model.heads {heads} does not divide the ViT-Small width {HIDDEN_DIM}")


def build_vit(image_size: int, patch_size: int = 16, depth: int = 12, heads: int = 12,
              freeze_patch_embed: bool = True) -> ViTSmall:
    """A ViT-Small for square ``image_size`` inputs (the only size its position embedding accepts)."""
    check_vit_shape(image_size, patch_size, heads)
    net = ViTSmall(image_size, patch_size, depth, heads)
    if freeze_patch_embed:
        net.freeze_patch_embed()
    return net


__all__ = ["HIDDEN_DIM", "MLP_DIM", "ViTSmall", "build_vit", "check_vit_shape", "sincos_position_embedding"]
