"""Collective helpers that fall back to the single-process result.

Methods call these inside ``forward``: MoCo-v3 gathers the keys of the global batch, NNSiam
enqueues the projections of every process, distillation averages its batch statistics. Without
an initialised process group (CPU tests, a single GPU) each helper returns its input's value.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """(rank of this process, number of processes); (0, 1) without a process group."""
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


@torch.no_grad()
def gather(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every process concatenated along dim 0 in rank order, without gradient.

    Every process must pass a tensor of the same shape. With one process this is ``x.detach()``.
    """
    if not is_distributed():
        return x.detach()
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def all_reduce_max(x: torch.Tensor) -> torch.Tensor:
    """The element-wise maximum of ``x`` over processes (a new tensor), e.g. "did any process ...?"."""
    out = x.detach().clone()
    if is_distributed():
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


@torch.no_grad()
def all_reduce_mean(x: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``x`` over processes (a new tensor; ``x`` is not modified)."""
    if not is_distributed():
        return x.detach()
    total = x.detach().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / dist.get_world_size()


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose gradient is the sum of every process's gradient: each process's
    loss depends on every process's input through the sum."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        total = x.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


class CrossProcessBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch of every process, on any device (gloo included).

    torch's SyncBatchNorm runs on accelerators only; this one makes a multi-process CPU run
    compute exactly what one process computes on the whole batch (the 2-process equivalence
    test relies on it). Statistics are summed with autograd-aware all-reduces; with DDP's
    gradient averaging that gives the gradient of the global-batch loss.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        totals = _AllReduceSum.apply(torch.cat([x.sum(dims), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centered = x - mean.view(shape)
        var = _AllReduceSum.apply((centered * centered).sum(dims)) / n  # two passes: no E[x^2] - E[x]^2 cancellation
        self._update_running_stats(mean.detach(), var.detach() * n / (n - 1))
        y = centered * torch.rsqrt(var + self.eps).view(shape)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased_var, factor)


def sync_batch_norm(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` with every batch norm computed over the global batch of all processes.

    torch's SyncBatchNorm on GPUs; on CPU, CrossProcessBatchNorm when several processes train
    (one process needs nothing). The parameters and buffers are kept (shared, not copied).
    """
    if device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if not is_distributed():
        return module
    return _replace_batch_norms(module)


def _replace_batch_norms(module: torch.nn.Module) -> torch.nn.Module:
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
        synced = CrossProcessBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                       module.track_running_stats)
        if module.affine:
            synced.weight, synced.bias = module.weight, module.bias
        if module.track_running_stats:
            synced.running_mean, synced.running_var = module.running_mean, module.running_var
            synced.num_batches_tracked = module.num_batches_tracked
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, _replace_batch_norms(child))
    return module
