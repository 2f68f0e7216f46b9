"""Backbones: torchvision ResNets with a width option and a small-image stem.

The backbone's output is the pooled representation (512-d for ResNet-18/34 at width 64,
2048-d for ResNet-50) that the paper analyses; the classification head is removed.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models import resnet

_ARCHS = {
    "resnet18": (resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (resnet.Bottleneck, [3, 4, 6, 3]),
}
ARCHS = tuple(_ARCHS)


class _ResNet(resnet.ResNet):
    """torchvision's ResNet with ``width`` channels in its first stage (64 = the standard)."""

    def __init__(self, block, layers, width: int, zero_init_residual: bool) -> None:
        super().__init__(block, layers, zero_init_residual=zero_init_residual)
        if width == 64:
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


def build_backbone(arch: str = "resnet18", width: int = 64, stem: str = "imagenet") -> nn.Module:
    """A ResNet whose forward returns the pooled feature vector; ``.feature_dim`` gives its size."""
    if arch not in _ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    block, layers = _ARCHS[arch]
    net = _ResNet(block, layers, width, zero_init_residual=True)
    if stem == "small":
        net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.maxpool = nn.Identity()
    elif stem != "imagenet":
        raise ValueError(f"unknown stem {stem!r}; choose 'imagenet' or 'small'")
    net.feature_dim = width * 8 * block.expansion
    net.fc = nn.Identity()
    return net


def backbone_from_config(model: dict[str, Any]) -> nn.Module:
    return build_backbone(model["arch"], model["width"], model["stem"])


def state_fingerprint(module: nn.Module) -> str:
    """A hash of every parameter and buffer: proves a backbone was not changed."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ARCHS", "backbone_from_config", "build_backbone", "count_parameters", "state_fingerprint"]
