"""Teacher -> student distillation (supplement section 2 of the paper).

The student (a backbone plus ONE linear layer) regresses the frozen teacher's representation,
normalised per dimension by running (EMA) estimates of the teacher output's mean and std. The
paper uses it to ask whether a smaller network can hold a less collapsed representation than it
learns by itself. As the authors' ``distill.py``: one view per step, the target is normalised with
the statistics as they were before this batch, which then moves them by ``1 - stats_momentum``
(0.05: momentum 0.95), std unbiased, ``1e-6`` added to it. The authors start the statistics at
0 and 1 or from stored teacher representations; here the first batch sets them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..distributed import all_reduce_mean, rank_and_world
from .base import Method, StepOutput, register
from .losses import distillation_mse


class RunningStats(nn.Module):
    """EMA of the per-dimension mean and std of a stream of batches, kept in buffers.

    The first batch initialises the estimates; later ones move them by ``1 - momentum``. Each
    batch's mean and second moment are averaged over processes first, so every process holds
    the statistics of the global batch.
    """

    def __init__(self, dim: int, momentum: float) -> None:
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(f"stats_momentum must be in [0, 1], got {momentum}")
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def batch_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-dimension mean and unbiased std of the global batch whose local rows are ``x``."""
        x = x.float()
        moments = all_reduce_mean(torch.stack([x.mean(dim=0), x.square().mean(dim=0)]))
        mean = moments[0]
        n = len(x) * rank_and_world()[1]
        return mean, ((moments[1] - mean.square()).clamp_min(0) * (n / max(n - 1, 1))).sqrt()

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold in the batch ``x`` (n x dim)."""
        self.fold(*self.batch_stats(x))

    @torch.no_grad()
    def fold(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Move the estimates towards a batch's ``mean`` and ``std`` (set them, for the first batch)."""
        # First batch: weight 0 on the (meaningless) initial buffers; no Python branch on a GPU tensor.
        m = torch.where(self.updates > 0, self.momentum, 0.0)
        self.mean.copy_(m * self.mean + (1 - m) * mean)
        self.std.copy_(m * self.std + (1 - m) * std)
        self.updates.add_(1)


@register("distill")
class Distill(Method):
    """Student = ``backbone`` + Linear(student dim -> teacher dim); the teacher is frozen.

    ``context["teacher"]`` is a module with ``.feature_dim``; it always stays in eval mode, takes
    no gradient and is left out of ``param_groups``. Loss: MSE between the student's prediction
    on ``view1`` and the normalised teacher output of the same view (about 1 for a student that
    predicts 0); ``view2`` is unused. The statistics update in training mode only, after the
    target is normalised (the first batch, which has no statistics before it, uses its own).
    """

    eps = 1e-6

    def __init__(self, backbone: nn.Module, settings: dict[str, Any], **context: Any) -> None:
        super().__init__()
        teacher = context.get("teacher")
        if teacher is None:
            raise ValueError("distill needs a teacher: build_method('distill', ..., teacher=<module>)")
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, teacher.feature_dim)
        self.teacher = teacher.requires_grad_(False).eval()
        self.stats = RunningStats(teacher.feature_dim, settings["stats_momentum"])

    def train(self, mode: bool = True) -> Distill:
        """Switch the student; the teacher stays in eval mode (its BN uses its running statistics)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        with torch.no_grad():
            target = self.teacher(view1)
        batch_mean, batch_std = self.stats.batch_stats(target)
        # The statistics before this batch; the first batch has none, so it uses its own
        # (torch.where, not a Python branch on a GPU tensor: no sync per step).
        first = self.stats.updates == 0
        mean = torch.where(first, batch_mean, self.stats.mean)
        std = torch.where(first, batch_std, self.stats.std)
        if self.training:
            self.stats.fold(batch_mean, batch_std)
        prediction = self.head(self.backbone(view1))
        loss = distillation_mse(prediction, target, mean, std, self.eps)
        return StepOutput(loss=loss, projections=prediction)

    def param_groups(self) -> list[dict[str, Any]]:
        student = [p for m in (self.backbone, self.head) for p in m.parameters() if p.requires_grad]
        return [{"params": student, "fix_lr": False}]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"distill_stats": {
            "mean": self.stats.mean.detach().cpu().clone(), "std": self.stats.std.detach().cpu().clone(),
            "momentum": float(self.stats.momentum), "updates": int(self.stats.updates),
        }}
