"""Model dicts without torch: which config keys each backbone family reads, and short names.

The planner (imported by Snakemake) uses these, so they must not import torch.
"""

from __future__ import annotations

from typing import Any

RESNET_KEYS = ("arch", "block", "width", "stem", "width_per_group")
VIT_KEYS = ("arch", "patch_size", "depth", "heads", "freeze_patch_embed", "image_size")
_DEFAULTS = {"block": "default", "width": 64, "width_per_group": 64, "depth": 12, "heads": 12, "patch_size": 16}


def family(arch: str) -> str:
    """'vit' for Vision Transformers, 'resnet' for the rest."""
    return "vit" if arch.startswith("vit") else "resnet"


def relevant_model(model: dict[str, Any], image_size: int) -> dict[str, Any]:
    """``model`` with only the keys its family reads (a ViT also needs the input size).

    Dropping the other family's keys keeps a run's settings, and so its invalidation, exact.
    """
    if family(model["arch"]) == "vit":
        return {key: model[key] for key in VIT_KEYS if key != "image_size"} | {"image_size": image_size}
    return {key: model[key] for key in RESNET_KEYS}


def model_name(model: dict[str, Any]) -> str:
    """A short id of a backbone for tables: 'resnet18', 'resnet18-bottleneck-g96', 'vit_small-d6-h3'."""
    value = {**_DEFAULTS, **model}
    if family(value["arch"]) == "vit":
        parts = [f"d{value['depth']}" if value["depth"] != 12 else "", f"h{value['heads']}" if value["heads"] != 12 else "",
                 f"p{value['patch_size']}" if value["patch_size"] != 16 else ""]
    else:
        parts = [value["block"] if value["block"] != "default" else "", f"w{value['width']}" if value["width"] != 64 else "",
                 f"g{value['width_per_group']}" if value["width_per_group"] != 64 else ""]
    return "-".join([value["arch"], *[p for p in parts if p]])
