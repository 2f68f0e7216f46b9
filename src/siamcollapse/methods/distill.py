"""Teacher -> student distillation (supplement section 2 of the paper).

The student (a backbone plus ONE linear layer) regresses the frozen teacher's representation,
normalised per dimension by running (EMA) estimates of the teacher output's mean and std. The
paper uses it to ask whether a smaller network can hold a less collapsed representation than it
learns by itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..training.distributed import all_reduce_mean
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
    def update(self, x: torch.Tensor) -> None:
        """Fold in the batch ``x`` (n x dim)."""
        x = x.float()
        moments = all_reduce_mean(torch.stack([x.mean(dim=0), x.square().mean(dim=0)]))
        mean = moments[0]
        std = (moments[1] - mean.square()).clamp_min(0).sqrt()
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
    and the normalised teacher output, averaged over both views (about 1 for a student that
    predicts 0). The statistics update in training mode only, before the loss uses them.
    """

    eps = 1e-5

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
            t1, t2 = self.teacher(view1), self.teacher(view2)
        if self.training:
            self.stats.update(torch.cat([t1, t2]))
        p1, p2 = self.head(self.backbone(view1)), self.head(self.backbone(view2))
        mean, std = self.stats.mean, self.stats.std
        loss = (distillation_mse(p1, t1, mean, std, self.eps) + distillation_mse(p2, t2, mean, std, self.eps)) / 2
        return StepOutput(loss=loss, projections=p1)

    def param_groups(self) -> list[dict[str, Any]]:
        student = [p for m in (self.backbone, self.head) for p in m.parameters() if p.requires_grad]
        return [{"params": student, "fix_lr": False}]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"distill_stats": {
            "mean": self.stats.mean.detach().cpu().clone(), "std": self.stats.std.detach().cpu().clone(),
            "momentum": float(self.stats.momentum), "updates": int(self.stats.updates),
        }}
