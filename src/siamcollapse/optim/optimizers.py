"""Optimisers: LARS (used by MoCo-v3, BYOL and the paper-style linear probe) and the factory.

LARS scales each weight matrix's update by ``trust_coefficient * |w| / |g + wd * w|`` so every
layer moves by a similar relative amount at large batch sizes. As in MoCo-v3 and BYOL, biases
and normalisation parameters (1-D tensors) get neither weight decay nor the adaptation, unless
``exclude_1d=False``: then every parameter is adapted, as apex's LARC in the authors' linear probe.
"""

from __future__ import annotations

from typing import Any

import torch

OPTIMIZERS = ("sgd", "lars", "adamw")


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al., 2017)."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.9,
                 trust_coefficient: float = 0.001, exclude_1d: bool = True) -> None:
        if lr < 0 or weight_decay < 0 or not 0 <= momentum < 1:
            raise ValueError(f"invalid LARS settings: lr={lr}, weight_decay={weight_decay}, momentum={momentum}")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum,
                    "trust_coefficient": trust_coefficient, "exclude_1d": exclude_1d}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                update = param.grad
                if param.ndim > 1 or not group["exclude_1d"]:
                    update = update.add(param, alpha=group["weight_decay"])
                    update = update.mul(self._trust_ratio(param, update, group["trust_coefficient"]))
                buffer = self.state[param].setdefault("momentum_buffer", torch.zeros_like(param))
                buffer.mul_(group["momentum"]).add_(update)
                param.add_(buffer, alpha=-group["lr"])
        return loss

    @staticmethod
    def _trust_ratio(param: torch.Tensor, update: torch.Tensor, coefficient: float) -> torch.Tensor:
        param_norm, update_norm = torch.linalg.vector_norm(param), torch.linalg.vector_norm(update)
        ratio = coefficient * param_norm / update_norm
        # An all-zero weight (a zero-initialised bias, a zeroed matrix) or a zero update keeps the
        # plain lr, as apex's LARC.
        return torch.where((param_norm > 0) & (update_norm > 0), ratio, torch.ones_like(ratio))


def build_optimizer(param_groups: list[dict[str, Any]], settings: dict[str, Any], lr: float) -> torch.optim.Optimizer:
    """The optimiser named by ``settings["optimizer"]`` over ``param_groups`` at learning rate ``lr``.

    Reads ``weight_decay`` and (SGD, LARS) ``momentum`` from ``settings``.
    """
    name = settings["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=settings["momentum"], weight_decay=settings["weight_decay"])
    if name == "lars":
        return LARS(param_groups, lr=lr, momentum=settings["momentum"], weight_decay=settings["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=settings["weight_decay"])
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
