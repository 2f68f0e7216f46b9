"""Learning-rate schedules: linear scaling, cosine decay per epoch or per step, warmup, fixed-lr groups."""

import itertools

import pytest
import torch

from siamcollapse.config import SCHEMA_PATH, load_yaml
from siamcollapse.optim.schedules import (
    apply_lr,
    apply_scheduled_lr,
    cosine_lr,
    fixed_group_lr,
    learning_rate,
    scaled_lr,
    scheduled_lr,
)


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


def test_per_step_decay_follows_the_cosine_at_every_step():
    # MoCo-v3's adjust_learning_rate: the cosine of the fractional epoch when the step starts
    for epoch in range(2, 12):
        for step in range(4):
            expected = cosine_lr(1.0, epoch + step / 4 - 2, 10)
            assert learning_rate(1.0, epoch, step, 4, 12, 2, decay="step") == pytest.approx(expected)
    within = [learning_rate(1.0, 5, step, 4, 12, 2, decay="step") for step in range(4)]
    assert all(a > b for a, b in itertools.pairwise(within))  # moves inside an epoch; per-epoch decay does not
    assert len({learning_rate(1.0, 5, step, 4, 12, 2) for step in range(4)}) == 1
    warmup = [learning_rate(1.0, 0, step, 4, 12, 2, decay="step") for step in range(4)]
    assert warmup == pytest.approx([learning_rate(1.0, 0, step, 4, 12, 2) for step in range(4)])
    with pytest.raises(ValueError, match="lr_decay"):
        learning_rate(1.0, 0, 0, 4, 12, 2, decay="batch")


def test_fixed_lr_groups_warm_up_then_stay_at_the_initial_lr():
    # main_simsiam's warmup: the predictor (fix_lr) follows the warmup ramp, then keeps init_lr
    hp = {"epochs": 12, "warmup_epochs": 2, "lr_decay": "epoch"}
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a], "fix_lr": False}, {"params": [b], "fix_lr": True}], lr=0.4)
    seen = []
    for epoch in range(12):
        for step in range(4):
            lr = apply_scheduled_lr(opt, 0.4, epoch, step, 4, hp)
            assert lr == pytest.approx(scheduled_lr(0.4, epoch, step, 4, hp))
            seen.append([g["lr"] for g in opt.param_groups])
    assert [fixed for _, fixed in seen[:8]] == pytest.approx([0.4 * (i + 1) / 8 for i in range(8)])
    assert [main for main, _ in seen[:8]] == pytest.approx([fixed for _, fixed in seen[:8]])
    assert all(fixed == pytest.approx(0.4) for _, fixed in seen[8:])
    assert seen[-1][0] < 0.4 * 0.05  # the other groups decayed
    assert fixed_group_lr(0.4, 5, 0, 4, 0) == 0.4  # no warmup: fixed from the first step


def test_method_lr_decay_defaults_are_the_authors():
    methods = load_yaml(SCHEMA_PATH)["properties"]["methods"]["properties"]
    assert {name: spec["properties"]["lr_decay"]["default"] for name, spec in methods.items()} == {
        "simsiam": "epoch", "nnsiam": "epoch", "distill": "epoch", "mocov3": "step", "byol": "step"}


