"""The interface every self-supervised method implements, and the method registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class StepOutput:
    loss: torch.Tensor
    projections: torch.Tensor  # one view's projector output, for the collapse monitor


class Method(nn.Module):
    """A backbone plus heads; ``forward(view1, view2)`` returns the loss of one step.

    The training loop calls ``on_step_end(progress)`` after every optimiser step, with
    ``progress`` = steps done / total steps in (0, 1]: momentum encoders update there.
    """

    backbone: nn.Module

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:  # pragma: no cover
        raise NotImplementedError

    def param_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups; a group with ``fix_lr`` keeps its initial learning rate."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "fix_lr": False}]

    def on_step_end(self, progress: float) -> None:
        """Work after each optimiser step (no-op unless the method has a momentum encoder)."""

    def checkpoint_extras(self) -> dict[str, Any]:
        """What the final checkpoint records besides the backbone (e.g. distillation statistics)."""
        return {}


_REGISTRY: dict[str, Callable[..., Method]] = {}


def register(name: str):
    def decorate(factory: Callable[..., Method]) -> Callable[..., Method]:
        _REGISTRY[name] = factory
        return factory

    return decorate


def build_method(name: str, backbone: nn.Module, settings: dict[str, Any], **context: Any) -> Method:
    """The method ``name`` around ``backbone``; ``context`` carries extra inputs (a teacher)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](backbone, settings, **context)


def method_names() -> list[str]:
    return sorted(_REGISTRY)
