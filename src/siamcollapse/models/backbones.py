"""Backbones by name: torchvision ResNets (width, block and stem options) and ViT-Small.

The backbone's forward returns the pooled representation the paper analyses (the classifier is
removed) and ``.feature_dim`` is its size: 512 for ResNet-18/34 and 2048 for ResNet-50 at width 64,
``width * 8`` with basic blocks and ``width * 32`` with bottleneck blocks in general, 384 for ViT-Small.
The paper's variants are the authors' (``resnet_variants.py``): ResNet-18 with bottleneck blocks
keeps its 2048-d output and widens only the bottleneck (``width_per_group`` 64/96/128), and
ResNet-50 without bottlenecks is a basic-block [5, 6, 9, 4] network (512-d at width 64).
Trained runs use ``zero_init_residual`` (SimSiam's recipe); a random-init baseline must not:
with the last BN of every residual branch zeroed an untrained ResNet is little more than its stem
and downsample convolutions.
``backbone_from_config`` builds one from the config's ``model`` section, reading only the keys of
its family (``MODEL_KEYS``). ``family`` and ``model_name`` (the short id used in result tables) are
re-exported from the torch-free ``naming`` module.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from torch import nn
from torchvision.models import resnet

from ..config import SCHEMA_PATH, fill_defaults, load_yaml
from .naming import RESNET_KEYS, VIT_KEYS, family, model_name
from .vit import build_vit

# Stage layouts of torchvision's ResNets and the residual block each uses by default.
_LAYOUTS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3]}
# The authors' ResNet-50 without bottlenecks: basic blocks, 2 x (5 + 6 + 9 + 4) + 2 = 50 layers.
_BASIC_LAYOUTS = {"resnet50": [5, 6, 9, 4]}
_OWN_BLOCK = {"resnet18": "basic", "resnet34": "basic", "resnet50": "bottleneck"}
Block = type[resnet.BasicBlock | resnet.Bottleneck]
_BLOCKS: dict[str, Block] = {
    "basic": resnet.BasicBlock, "bottleneck": resnet.Bottleneck}
RESNET_ARCHS = tuple(_LAYOUTS)
VIT_ARCHS = ("vit_small",)
ARCHS = RESNET_ARCHS + VIT_ARCHS
BLOCKS = ("default", *_BLOCKS)
STANDARD_WIDTH = 64  # torchvision's first-stage width
# The keys of the config's `model` section each family reads (the others are irrelevant to it);
# they live in the torch-free `naming` module so the planner can use them without importing torch.
MODEL_KEYS = {"resnet": RESNET_KEYS, "vit": VIT_KEYS}


def _check_arch(arch: str) -> str:
    """``arch``'s family ('resnet' or 'vit'); ValueError naming the key for an unknown one."""
    if arch not in ARCHS:
        raise ValueError(f"unknown model.arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return family(arch)


class _ResNet(resnet.ResNet):
    """torchvision's ResNet with ``width`` channels in its first stage (64 = the standard)."""

    def __init__(self, block, layers, width: int, zero_init_residual: bool, width_per_group: int = 64) -> None:
        super().__init__(block, layers, zero_init_residual=zero_init_residual, width_per_group=width_per_group)
        if width == STANDARD_WIDTH:
            return
        # Rebuild the layers with scaled widths; torchvision hard-codes 64/128/256/512.
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(width)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, resnet.Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, resnet.BasicBlock):
                    nn.init.zeros_(m.bn2.weight)


def resnet_block(arch: str, block: str = "default") -> Block:
    """The residual block class: ``arch``'s own for 'default', else 'basic' or 'bottleneck'."""
    if block not in BLOCKS:
        raise ValueError(f"unknown model.block {block!r}; choose one of {', '.join(BLOCKS)}")
    return _BLOCKS[_OWN_BLOCK[arch] if block == "default" else block]


def resnet_layout(arch: str, block: str = "default") -> list[int]:
    """Blocks per stage: ``arch``'s own, except the authors' basic-block ResNet-50 ([5, 6, 9, 4])."""
    if block == "basic" and _OWN_BLOCK[arch] != "basic":
        return list(_BASIC_LAYOUTS[arch])
    return list(_LAYOUTS[arch])


def build_backbone(arch: str = "resnet18", width: int = STANDARD_WIDTH, stem: str = "imagenet",
                   block: str = "default", width_per_group: int = STANDARD_WIDTH,
                   zero_init_residual: bool = True) -> nn.Module:
    """A ResNet whose forward returns the pooled feature vector; ``.feature_dim`` gives its size.

    ``block`` swaps the residual block: 'bottleneck' on resnet18 gives 2048-d features at width 64
    with ``width_per_group`` (torchvision's: the bottleneck's inner width at width 64) widening only
    the inside of each block (the paper's 64/96/128); 'basic' on resnet50 is the authors' [5, 6, 9, 4]
    basic-block network (``width * 8``, 512-d). ``zero_init_residual=False`` is torchvision's
    standard initialisation, for untrained baselines.
    """
    if _check_arch(arch) != "resnet":
        raise ValueError(f"build_backbone builds ResNets; build {arch!r} with backbone_from_config")
    block_cls = resnet_block(arch, block)
    if width_per_group != STANDARD_WIDTH and block_cls is not resnet.Bottleneck:
        raise ValueError(f"model.width_per_group {width_per_group} needs bottleneck blocks (model.block: bottleneck "
                         f"or a ResNet-50); basic blocks have no inner width")
    net = _ResNet(block_cls, resnet_layout(arch, block), width, zero_init_residual, width_per_group)
    if stem == "small":
        net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's conv init
        net.maxpool = nn.Identity()
    elif stem != "imagenet":
        raise ValueError(f"unknown model.stem {stem!r}; choose 'imagenet' or 'small'")
    net.feature_dim = width * 8 * block_cls.expansion
    net.fc = nn.Identity()
    return net


@cache
def _schema_model_defaults() -> dict[str, Any]:
    schema = load_yaml(SCHEMA_PATH)
    return fill_defaults({}, schema["$defs"]["model"], schema)


def model_settings(model: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``model`` its family reads, missing ones set to the schema defaults."""
    merged = {**_schema_model_defaults(), **model}
    return {key: merged[key] for key in MODEL_KEYS[_check_arch(merged["arch"])] if key in merged}


def backbone_from_config(model: dict[str, Any], zero_init_residual: bool = True) -> nn.Module:
    """The backbone described by a config's ``model`` section; keys of the other family are ignored.

    A ViT also needs ``image_size`` (the dataset's, injected by the pipeline). ``zero_init_residual``
    applies to ResNets: True for training (SimSiam's recipe), False for a random-init baseline.
    """
    settings = model_settings(model)
    if family(settings["arch"]) == "resnet":
        return build_backbone(settings["arch"], settings["width"], settings["stem"], settings["block"],
                              settings["width_per_group"], zero_init_residual)
    if "image_size" not in settings:
        raise ValueError(f"model.image_size is required for {settings['arch']} (the dataset's image size)")
    return build_vit(settings["image_size"], settings["patch_size"], settings["depth"], settings["heads"],
                     settings["freeze_patch_embed"])


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ARCHS", "BLOCKS", "MODEL_KEYS", "RESNET_ARCHS", "STANDARD_WIDTH", "VIT_ARCHS", "backbone_from_config",
           "build_backbone", "count_parameters", "family", "model_name", "model_settings", "resnet_block", "resnet_layout"]
