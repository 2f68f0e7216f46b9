"""Which training-set indices each step of an epoch sees.

A strategy maps (subset indices, epoch) to a [steps, batch] index matrix. Every epoch has the
same number of steps whatever the size of the data it draws from, so runs on different
subsets get the same compute; a small subset is simply cycled more often.
"""

from __future__ import annotations

import torch


def epoch_seed(seed: int, epoch: int) -> int:
    """One independent, reproducible seed per (run seed, epoch): resuming needs no RNG state."""
    return seed * 100_003 + epoch


def iid_batches(indices: torch.Tensor, steps: int, batch_size: int, seed: int, epoch: int) -> torch.Tensor:
    """Ordinary shuffled epochs: concatenated random permutations of ``indices``, cut into batches."""
    if len(indices) == 0:
        raise ValueError("cannot train on an empty subset")
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    needed = steps * batch_size
    permutations = [indices[torch.randperm(len(indices), generator=generator)]
                    for _ in range(-(-needed // len(indices)))]
    return torch.cat(permutations)[:needed].view(steps, batch_size)


STRATEGIES = {"iid": iid_batches}


def epoch_batches(strategy: str, indices: torch.Tensor, steps: int, batch_size: int, seed: int,
                  epoch: int) -> torch.Tensor:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return STRATEGIES[strategy](indices, steps, batch_size, seed, epoch)


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This process's contiguous share of a global batch (the global batch size is preserved)."""
    if len(batch) % world_size:
        raise ValueError(f"batch size {len(batch)} is not divisible by {world_size} processes")
    per_process = len(batch) // world_size
    return batch[rank * per_process:(rank + 1) * per_process]
