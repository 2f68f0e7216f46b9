"""NNSiam: SimSiam whose target is the nearest neighbour of the other view's projection.

As NNCLR (Dwibedi et al. 2021) does for SimCLR, each prediction is pulled towards the entry of
a FIFO queue of past projections closest to the other view's projection, rather than towards that
projection itself. The paper uses it as a baseline that sees "more diverse" targets.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather
from .base import StepOutput, register
from .losses import NEIGHBOUR_METRICS, nearest_neighbours, simsiam_loss
from .simsiam import SimSiam


class ProjectionQueue(nn.Module):
    """A FIFO queue of ``size`` ``dim``-d projections, kept in buffers, searched by ``neighbour``.

    'l2' (the NNSiam authors'): entries are the raw projections, the queue starts full of random
    unit vectors and the nearest entry is the one at the smallest squared L2 distance. 'cosine':
    entries are L2-normalised, the queue starts empty (only filled entries are searched, and an
    empty queue returns ``z`` itself) and the nearest entry has the highest cosine similarity.
    ``pointer`` is where the next entry is written (wrapping around); ``count`` is how many entries
    are valid (saturating at ``size``; entries ``[0, count)``, since writing starts at 0).
    """

    def __init__(self, size: int, dim: int, neighbour: str = "l2") -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue_size must be at least 1, got {size}")
        if neighbour not in NEIGHBOUR_METRICS:
            raise ValueError(f"unknown methods.nnsiam.neighbour {neighbour!r}; choose one of "
                             f"{', '.join(NEIGHBOUR_METRICS)}")
        self.neighbour = neighbour
        filled = neighbour == "l2"
        start = F.normalize(torch.randn(size, dim), dim=-1) if filled else torch.zeros(size, dim)
        self.register_buffer("entries", start)
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.tensor(size if filled else 0, dtype=torch.long))

    @property
    def size(self) -> int:
        return self.entries.shape[0]

    def valid(self) -> torch.Tensor:
        """Which entries are filled (bool, one per entry): ``[0, count)``."""
        return torch.arange(self.size, device=self.entries.device) < self.count

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        """Enqueue the rows of ``z`` (detached; normalised for 'cosine'), overwriting the oldest entries."""
        z = z.detach().float()
        if self.neighbour == "cosine":
            z = F.normalize(z, dim=-1)
        z = z[-self.size:].to(self.entries.dtype)
        slots = (self.pointer + torch.arange(len(z), device=self.entries.device)) % self.size
        self.entries[slots] = z
        self.pointer.copy_((self.pointer + len(z)) % self.size)
        self.count.copy_(torch.clamp(self.count + len(z), max=self.size))

    @torch.no_grad()
    def target(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest valid entry to each row of ``z`` (no gradient); ``z`` itself while no entry is valid."""
        # Masks and torch.where rather than Python branches on ``count``: no GPU->CPU sync per step.
        neighbours = nearest_neighbours(z, self.entries, self.valid(), self.neighbour)
        return torch.where(self.count > 0, neighbours, z.detach())


@register("nnsiam")
class NNSiam(SimSiam):
    """SimSiam's heads and parameter groups plus a queue of ``queue_size`` projections.

    Loss: SimSiam's negative cosine of p1 against the neighbour of z2 and of p2 against the
    neighbour of z1 (in [-1, 1]). As the authors: neighbours are looked up before the queue is
    updated, and in training mode only the gathered z1 of the global batch is enqueued, so a
    batch never retrieves itself. ``settings["neighbour"]`` picks the search (see ProjectionQueue).
    """

    def __init__(self, backbone: nn.Module, settings: dict[str, Any], **context: Any) -> None:
        super().__init__(backbone, settings, **context)
        self.queue = ProjectionQueue(settings["queue_size"], settings["proj_dim"], settings.get("neighbour", "l2"))

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        z1 = self.projector(self.backbone(view1))
        z2 = self.projector(self.backbone(view2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        # simsiam_loss stops the gradient through its targets, here the neighbours.
        loss = simsiam_loss(p1, p2, self.queue.target(z1), self.queue.target(z2))
        if self.training:
            self.queue.push(gather(z1))
        return StepOutput(loss=loss, projections=z1)
