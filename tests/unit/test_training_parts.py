"""Schedules, batch plans and sharding."""

import math

import pytest
import torch

from siamcollapse.plan import steps_per_epoch
from siamcollapse.training.schedules import apply_lr, cosine_lr, learning_rate, scaled_lr
from siamcollapse.training.strategies import epoch_batches, shard


def iid(seed=0, batch_size=4, epochs=10):
    return {"strategy": "iid", "chunks": None, "epochs": epochs, "seed": seed, "batch_size": batch_size}


def test_linear_scaling_and_cosine_schedule():
    assert scaled_lr(0.05, 512) == pytest.approx(0.1)
    assert cosine_lr(0.1, 0, 10) == pytest.approx(0.1)
    assert cosine_lr(0.1, 5, 10) == pytest.approx(0.05)
    assert cosine_lr(0.1, 10, 10) == pytest.approx(0.0, abs=1e-12)


def test_fixed_lr_groups_keep_the_initial_lr():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "fix_lr": False}, {"params": [b], "fix_lr": True}], lr=0.1)
    apply_lr(opt, 0.05, 0.1)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.1])


def test_without_warmup_the_lr_is_simsiams_cosine_per_epoch():
    for epoch in range(10):
        for step in (0, 3):
            assert learning_rate(0.1, epoch, step, 4, 10, 0) == pytest.approx(cosine_lr(0.1, epoch, 10))


def test_warmup_rises_linearly_per_step_then_decays_over_the_remaining_epochs():
    lrs = [learning_rate(1.0, epoch, step, 4, 12, 2) for epoch in range(2) for step in range(4)]
    assert lrs == pytest.approx([(i + 1) / 8 for i in range(8)])  # reaches the full lr at the last warmup step
    assert learning_rate(1.0, 2, 0, 4, 12, 2) == pytest.approx(1.0)  # cosine starts at the top
    assert learning_rate(1.0, 7, 0, 4, 12, 2) == pytest.approx(cosine_lr(1.0, 5, 10))
    assert all(a >= b for a, b in zip([learning_rate(1.0, e, 0, 4, 12, 2) for e in range(2, 12)],
                                       [learning_rate(1.0, e, 0, 4, 12, 2) for e in range(3, 12)]))


def test_every_epoch_has_the_same_steps_and_cycles_small_subsets():
    subset = torch.arange(10, 17)
    batches = epoch_batches(iid(), subset, steps=5, epoch=0)
    assert batches.shape == (5, 4)
    assert set(batches.flatten().tolist()) == set(subset.tolist())
    # each pass over the subset is a permutation: the first 7 entries hold every index once
    assert sorted(batches.flatten()[:7].tolist()) == subset.tolist()


def test_batches_are_reproducible_per_epoch_and_differ_between_epochs():
    subset = torch.arange(100)
    a = epoch_batches(iid(seed=1, batch_size=8), subset, 3, epoch=2)
    assert torch.equal(a, epoch_batches(iid(seed=1, batch_size=8), subset, 3, epoch=2))
    assert not torch.equal(a, epoch_batches(iid(seed=1, batch_size=8), subset, 3, epoch=3))


def test_steps_per_epoch_is_fixed_by_the_full_training_set():
    assert steps_per_epoch({"steps_per_epoch": None, "batch_size": 64}, 4000) == math.ceil(4000 / 64)
    assert steps_per_epoch({"steps_per_epoch": 7, "batch_size": 64}, 4000) == 7


def test_shards_partition_the_global_batch():
    batch = torch.arange(12)
    parts = [shard(batch, r, 3) for r in range(3)]
    assert torch.equal(torch.cat(parts), batch)
    with pytest.raises(ValueError, match="divisible"):
        shard(batch, 0, 5)
