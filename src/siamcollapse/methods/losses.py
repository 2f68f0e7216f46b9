"""Losses as small pure functions of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(p: torch.Tensor, z: torch.Tensor, stop_gradient: bool = True) -> torch.Tensor:
    """-cos(p, stopgrad(z)) averaged over the batch; -1 when p and z point the same way."""
    return -F.cosine_similarity(p, z.detach() if stop_gradient else z, dim=-1).mean()


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor,
                 stop_gradient: bool = True) -> torch.Tensor:
    """SimSiam's symmetrised loss -(cos(p1, sg(z2)) + cos(p2, sg(z1))) / 2, in [-1, 1].

    ``stop_gradient=False`` lets the gradient through the targets too: the SimSiam paper's
    ablation, which collapses to a constant output within a few epochs.
    """
    return (negative_cosine(p1, z2, stop_gradient) + negative_cosine(p2, z1, stop_gradient)) / 2


def normalized_std(z: torch.Tensor) -> torch.Tensor:
    """Mean per-dimension std of L2-normalised outputs: a collapse monitor.

    A healthy d-dimensional output has a value near 1/sqrt(d); complete collapse gives 0.
    """
    return F.normalize(z.detach().float(), dim=-1).std(dim=0).mean()


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's ``2 - 2 cos(p, stopgrad(z))`` averaged over the batch, in [0, 4]; 0 when aligned.

    Equal to the mean squared distance between the L2-normalised ``p`` and ``z``.
    """
    # float32: near convergence the loss is a small difference from 2, below bf16's resolution.
    return 2 + 2 * negative_cosine(p.float(), z.float())


def info_nce(q: torch.Tensor, k: torch.Tensor, temperature: float, offset: int = 0) -> torch.Tensor:
    """MoCo-v3's contrastive loss of queries ``q`` (this process's n rows) against keys ``k``.

    ``k`` holds the keys of the global batch (gathered from every process, no gradient); the
    positive of ``q[i]`` is ``k[offset + i]``, with ``offset = rank * n``. Both are L2-normalised;
    the cross-entropy of the cosine logits / temperature is scaled by ``2 * temperature`` as in
    MoCo-v3. Unrelated high-dimensional q and k at temperature 1 give about ``2 * log(len(k))``.
    """
    # float32: the logits feed a softmax, which bf16 autocast would make coarse.
    q, k = F.normalize(q.float(), dim=-1), F.normalize(k.float(), dim=-1)
    logits = q @ k.T / temperature
    labels = torch.arange(len(q), device=q.device) + offset
    return F.cross_entropy(logits, labels) * (2 * temperature)


NEIGHBOUR_METRICS = ("l2", "cosine")


@torch.no_grad()
def nearest_neighbours(z: torch.Tensor, queue: torch.Tensor, valid: torch.Tensor | None = None,
                       metric: str = "cosine") -> torch.Tensor:
    """For each row of ``z``, the closest row of ``queue`` (no gradient).

    ``metric`` 'cosine': highest cosine similarity; 'l2': smallest squared Euclidean distance
    between the unnormalised vectors (the NNSiam authors' search). ``valid`` (bool, one per queue
    row) restricts the search to those rows. Returns a tensor shaped like ``z`` (rows taken from
    ``queue``, in ``z``'s dtype).
    """
    if metric == "cosine":
        similarity = F.normalize(z.float(), dim=-1) @ F.normalize(queue.float(), dim=-1).T
    elif metric == "l2":
        q = queue.float()
        # -|z - q|^2 up to the per-row constant |z|^2, which does not change the arg-max.
        similarity = 2 * z.float() @ q.T - q.square().sum(dim=1)
    else:
        raise ValueError(f"unknown neighbour metric {metric!r}; choose one of {', '.join(NEIGHBOUR_METRICS)}")
    if valid is not None:
        similarity = similarity.masked_fill(~valid, float("-inf"))
    return queue[similarity.argmax(dim=1)].to(z.dtype)


def distillation_mse(prediction: torch.Tensor, target: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                     eps: float = 1e-5) -> torch.Tensor:
    """MSE of ``prediction`` against ``(target - mean) / (std + eps)`` (per-dimension normalised, no gradient).

    A prediction of 0 (the normalised mean) scores about 1 when the statistics match the target's.
    """
    normalised = ((target.float() - mean) / (std + eps)).detach()
    return F.mse_loss(prediction.float(), normalised)
