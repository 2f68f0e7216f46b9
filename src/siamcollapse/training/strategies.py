"""Which training-set indices each step of an epoch sees: the paper's training strategies.

The run's subset is put in a seeded order and cut into ``chunks`` (one per epoch by default).
Each strategy names the *pool* of chunks an epoch draws from:

- ``iid``: every chunk, every epoch (ordinary multi-epoch training);
- ``single-pass``: epoch e trains on chunk c(e) only, c(e) = floor(e x chunks / epochs), so the
  data flows past and each image belongs to one stretch of training;
- ``cumulative``: epoch e trains on chunks 0..c(e);
- ``last``: every epoch trains on the last ``last_chunks`` chunks (the subset baseline);
- ``hybrid``: single-pass for the first ``switch_epoch`` epochs, then iid.

Every epoch has the same number of steps whatever the size of its pool (compute-matched runs):
the pool is cycled through fresh permutations until ``steps x batch_size`` indices are drawn.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import UserInputError

STRATEGIES = ("iid", "single-pass", "cumulative", "last", "hybrid")


def epoch_seed(seed: int, epoch: int) -> int:
    """One independent, reproducible seed per (run seed, epoch): resuming needs no RNG state."""
    return seed * 100_003 + epoch


def step_seeds(seed: int, epoch: int, steps: int) -> list[int]:
    """The augmentation seed of every step of an epoch: a run resumes at any step, and every
    process draws the same numbers (each keeps its rows of the global batch)."""
    return [(epoch_seed(seed, epoch) * 1_000_033 + step + 1) % 2**63 for step in range(steps)]


def ordering_seed(seed: int) -> int:
    """The seed of a run's data ordering (distinct from every epoch's seed)."""
    return seed * 100_003 - 1


def chunk_ordering(indices: torch.Tensor, chunks: int, seed: int) -> list[torch.Tensor]:
    """A seeded permutation of ``indices`` cut into ``chunks`` contiguous, near-equal chunks."""
    if chunks > len(indices):
        raise ValueError(f"cannot cut {len(indices)} training images into {chunks} chunks; "
                         "set pretrain.chunks to at most the subset size")
    generator = torch.Generator().manual_seed(ordering_seed(seed))
    order = indices[torch.randperm(len(indices), generator=generator)]
    return list(torch.tensor_split(order, chunks))


def chunk_of_epoch(epoch: int, epochs: int, chunks: int) -> int:
    """The chunk a single-pass run trains on in ``epoch`` (chunks spread evenly over epochs)."""
    return epoch * chunks // epochs


def epoch_strategy(hp: dict[str, Any], epoch: int) -> str:
    """The strategy in force in ``epoch`` (a hybrid run is single-pass, then iid)."""
    if hp["strategy"] == "hybrid":
        return "single-pass" if epoch < hp["switch_epoch"] else "iid"
    return hp["strategy"]


def epoch_pool(hp: dict[str, Any], indices: torch.Tensor, epoch: int) -> torch.Tensor:
    """The indices ``epoch`` draws its batches from under the run's strategy (see module doc)."""
    strategy = epoch_strategy(hp, epoch)
    if strategy == "iid":  # chunks play no part: any subset size works
        return indices
    # a seed of a run group with `seeds:` keeps the group's ordering (plan sets ordering_seed)
    chunks = chunk_ordering(indices, hp["chunks"] or hp["epochs"], hp.get("ordering_seed", hp["seed"]))
    current = chunk_of_epoch(epoch, hp["epochs"], len(chunks))
    if strategy == "single-pass":
        return chunks[current]
    if strategy == "cumulative":
        return torch.cat(chunks[:current + 1])
    if strategy == "last":
        return torch.cat(chunks[-hp["last_chunks"]:])
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def cycled_batches(pool: torch.Tensor, steps: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``steps`` batches drawn from concatenated random permutations of ``pool``: [steps, batch]."""
    if len(pool) == 0:
        raise ValueError("cannot train on an empty subset")
    if len(pool) < batch_size:  # found before any job where the config gives the dataset's size (preflight)
        raise UserInputError(f"pretrain.batch_size {batch_size} is more than the {len(pool)} images this epoch "
                             "draws its batches from: one batch would repeat images; lower the batch size")
    needed = steps * batch_size
    permutations = [pool[torch.randperm(len(pool), generator=generator)] for _ in range(-(-needed // len(pool)))]
    return torch.cat(permutations)[:needed].view(steps, batch_size)


def epoch_batches(hp: dict[str, Any], indices: torch.Tensor, steps: int, epoch: int) -> torch.Tensor:
    """The [steps, batch_size] index matrix of ``epoch`` for the run's pretraining settings ``hp``."""
    generator = torch.Generator().manual_seed(epoch_seed(hp["seed"], epoch))
    return cycled_batches(epoch_pool(hp, indices, epoch), steps, hp["batch_size"], generator)


def shard(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This process's contiguous share of a global batch (the global batch size is preserved)."""
    if len(batch) % world_size:
        raise ValueError(f"batch size {len(batch)} is not divisible by {world_size} processes")
    per_process = len(batch) // world_size
    return batch[rank * per_process:(rank + 1) * per_process]

