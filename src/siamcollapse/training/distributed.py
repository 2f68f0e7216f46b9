"""Collective helpers that fall back to the single-process result.

Methods call these inside ``forward``: MoCo-v3 gathers the keys of the global batch, NNSiam
enqueues the projections of every process, distillation averages its batch statistics. Without
an initialised process group (CPU tests, a single GPU) each helper returns its input's value.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(rank of this process, number of processes); (0, 1) without a process group."""
    if not _is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


@torch.no_grad()
def gather(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every process concatenated along dim 0 in rank order, without gradient.

    Every process must pass a tensor of the same shape. With one process this is ``x.detach()``.
    """
    if not _is_distributed():
        return x.detach()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``x`` over processes (a new tensor; ``x`` is not modified)."""
    if not _is_distributed():
        return x.detach()
    total = x.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / dist.get_world_size()
