"""ViT-Small backbone (torchvision's VisionTransformer without its classification head).

ViT-Small has a 384-d token width and a 1536-d MLP (4x); the paper trains it with 12 blocks and
6 heads and also tries shallower (6, 3 blocks) and fewer-head variants. The representation is the
CLS token after the encoder's final LayerNorm, so ``forward`` returns a (batch, 384) tensor.
Following MoCo-v3, the random patch projection can be kept frozen, which stabilises training.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

HIDDEN_DIM = 384
MLP_DIM = 4 * HIDDEN_DIM


class ViTSmall(VisionTransformer):
    """ViT-Small whose forward gives the final-LayerNorm CLS token; ``.feature_dim`` = 384."""

    def __init__(self, image_size: int, patch_size: int, depth: int, heads: int) -> None:
        super().__init__(image_size=image_size, patch_size=patch_size, num_layers=depth, num_heads=heads,
                         hidden_dim=HIDDEN_DIM, mlp_dim=MLP_DIM)
        self.heads = nn.Identity()  # drop the classifier: the CLS token itself is the representation
        self.feature_dim = HIDDEN_DIM

    def freeze_patch_embed(self) -> None:
        """Stop training the patch projection (weights and bias keep their random init)."""
        self.conv_proj.requires_grad_(False)


def check_vit_shape(image_size: int, patch_size: int, heads: int) -> None:
    """Raise ValueError, naming the config key, when the image does not tile or the heads do not divide 384."""
    if image_size % patch_size:
        raise ValueError(f"model.image_size {image_size} is not a multiple of model.patch_size {patch_size}")
    if HIDDEN_DIM % heads:
        raise ValueError(f"model.heads {heads} does not divide the ViT-Small width {HIDDEN_DIM}")


def build_vit(image_size: int, patch_size: int = 16, depth: int = 12, heads: int = 6,
              freeze_patch_embed: bool = True) -> ViTSmall:
    """A ViT-Small for square ``image_size`` inputs (the only size its position embedding accepts)."""
    check_vit_shape(image_size, patch_size, heads)
    net = ViTSmall(image_size, patch_size, depth, heads)
    if freeze_patch_embed:
        net.freeze_patch_embed()
    return net


__all__ = ["HIDDEN_DIM", "MLP_DIM", "ViTSmall", "build_vit", "check_vit_shape"]
