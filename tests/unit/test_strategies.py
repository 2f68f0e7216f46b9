"""The training strategies: chunk coverage, reproducible ordering, equal steps, the right pools."""

from itertools import pairwise

import pytest
import torch

from siamcollapse.errors import UserInputError
from siamcollapse.training.strategies import (
    chunk_of_epoch,
    chunk_ordering,
    epoch_batches,
    epoch_pool,
    shard,
)

SUBSET = torch.arange(100, 160)  # 60 training indices


def settings(strategy, epochs=6, chunks=None, **extra):
    return {"strategy": strategy, "epochs": epochs, "chunks": chunks, "seed": 3, "batch_size": 8,
            "last_chunks": 2, "switch_epoch": None, **extra}


def test_chunks_cover_the_subset_exactly_once_in_a_seeded_order():
    chunks = chunk_ordering(SUBSET, 7, seed=3)
    joined = torch.cat(chunks)
    assert sorted(joined.tolist()) == SUBSET.tolist()
    assert max(map(len, chunks)) - min(map(len, chunks)) <= 1
    assert torch.equal(joined, torch.cat(chunk_ordering(SUBSET, 7, seed=3)))  # reproducible
    assert not torch.equal(joined, torch.cat(chunk_ordering(SUBSET, 7, seed=4)))  # the seed matters
    assert not torch.equal(joined, SUBSET)  # shuffled, not the subset's own order
    with pytest.raises(ValueError, match="chunks"):
        chunk_ordering(SUBSET[:3], 4, seed=0)


def test_iid_needs_no_chunks_so_a_tiny_subset_still_trains():
    hp = settings("iid", epochs=100)
    assert sorted(epoch_pool(hp, SUBSET[:3], 0).tolist()) == SUBSET[:3].tolist()


def test_chunks_spread_evenly_over_the_epochs():
    assert [chunk_of_epoch(e, 6, 6) for e in range(6)] == [0, 1, 2, 3, 4, 5]
    assert [chunk_of_epoch(e, 6, 3) for e in range(6)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("strategy", ["iid", "single-pass", "cumulative", "last", "hybrid"])
def test_every_epoch_has_the_same_number_of_steps_whatever_its_pool(strategy):
    hp = settings(strategy, switch_epoch=3)
    shapes = {tuple(epoch_batches(hp, SUBSET, steps=5, epoch=e).shape) for e in range(hp["epochs"])}
    assert shapes == {(5, 8)}


def pools(hp):
    chunks = chunk_ordering(SUBSET, hp["chunks"] or hp["epochs"], hp["seed"])
    return chunks, [set(epoch_pool(hp, SUBSET, e).tolist()) for e in range(hp["epochs"])]


def test_single_pass_trains_each_epoch_on_its_own_chunk_and_sees_everything_once():
    chunks, epoch_pools = pools(settings("single-pass"))
    assert epoch_pools == [set(c.tolist()) for c in chunks]
    assert set().union(*epoch_pools) == set(SUBSET.tolist())
    assert all(not (a & b) for i, a in enumerate(epoch_pools) for b in epoch_pools[i + 1:])


def test_cumulative_grows_by_one_chunk_per_epoch():
    chunks, epoch_pools = pools(settings("cumulative"))
    assert [len(p) for p in epoch_pools] == [sum(len(c) for c in chunks[:e + 1]) for e in range(6)]
    assert all(a < b for a, b in pairwise(epoch_pools))


def test_last_k_trains_on_the_final_chunks_every_epoch():
    chunks, epoch_pools = pools(settings("last"))
    assert epoch_pools == [set(torch.cat(chunks[-2:]).tolist())] * 6


def test_hybrid_is_single_pass_until_the_switch_then_iid():
    hp = settings("hybrid", switch_epoch=2)
    _, hybrid = pools(hp)
    _, single = pools(settings("single-pass"))
    assert hybrid[:2] == single[:2]
    assert hybrid[2:] == [set(SUBSET.tolist())] * 4


def test_batches_draw_only_from_the_epochs_pool():
    hp = settings("single-pass")
    _, epoch_pools = pools(hp)
    for epoch in range(hp["epochs"]):
        assert set(epoch_batches(hp, SUBSET, steps=4, epoch=epoch).flatten().tolist()) <= epoch_pools[epoch]


def iid(seed=0, batch_size=4, epochs=10):
    return {"strategy": "iid", "chunks": None, "epochs": epochs, "seed": seed, "batch_size": batch_size}


def test_every_epoch_has_the_same_steps_and_cycles_small_subsets():
    subset = torch.arange(10, 17)
    batches = epoch_batches(iid(), subset, steps=5, epoch=0)
    assert batches.shape == (5, 4)
    assert set(batches.flatten().tolist()) == set(subset.tolist())
    # each pass over the subset is a permutation: the first 7 entries hold every index once
    assert sorted(batches.flatten()[:7].tolist()) == subset.tolist()


def test_a_batch_larger_than_the_epochs_pool_is_an_error_not_repeated_images():
    with pytest.raises(UserInputError, match="batch_size 8 is more than the 5 images"):
        epoch_batches(iid(batch_size=8), torch.arange(5), steps=2, epoch=0)


def test_batches_are_reproducible_per_epoch_and_differ_between_epochs():
    subset = torch.arange(100)
    a = epoch_batches(iid(seed=1, batch_size=8), subset, 3, epoch=2)
    assert torch.equal(a, epoch_batches(iid(seed=1, batch_size=8), subset, 3, epoch=2))
    assert not torch.equal(a, epoch_batches(iid(seed=1, batch_size=8), subset, 3, epoch=3))



def test_shards_partition_the_global_batch():
    batch = torch.arange(12)
    parts = [shard(batch, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch)
    with pytest.raises(ValueError, match="divisible"):
        shard(batch, 0, 5)
