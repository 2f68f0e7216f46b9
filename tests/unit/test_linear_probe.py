"""The cached-feature linear probe on features with known structure."""

import torch

from siamcollapse.evaluation.linear_probe import top1, train_linear_probe
from tests.helpers.clustered_features import clustered

PROBE = {"lr": 0.1, "epochs": 30, "batch_size": 64, "weight_decay": 0.0, "seed": 0}


def test_linear_probe_learns_a_linearly_separable_problem_and_is_scale_invariant():
    train, train_labels = clustered(100)
    val, val_labels = clustered(30, seed=1)
    for scale in (1.0, 1e-3):
        head, standardiser = train_linear_probe(train * scale, train_labels, PROBE, 4)
        assert top1(head, standardiser, val * scale, val_labels) > 95


def test_linear_probe_is_at_chance_on_random_labels():
    train, _ = clustered(100)
    labels = torch.randint(0, 4, (len(train),), generator=torch.Generator().manual_seed(5))
    val, _ = clustered(50, seed=2)
    val_labels = torch.randint(0, 4, (len(val),), generator=torch.Generator().manual_seed(6))
    head, standardiser = train_linear_probe(train, labels, PROBE, 4)
    assert top1(head, standardiser, val, val_labels) < 45


def test_linear_probe_drops_dimensions_that_are_constant_on_the_training_set():
    train, train_labels = clustered(100)
    val, val_labels = clustered(30, seed=1)
    dead = torch.zeros(len(train), 5)  # e.g. ReLU units that never fire on the training set
    train = torch.cat([train[:, :8], dead, train[:, 8:]], dim=1)
    # On val the dead units fire a little: divided by a clamped std they would swamp the live ones.
    wake = 1e-2 * torch.randn(len(val), 5, generator=torch.Generator().manual_seed(4))
    val = torch.cat([val[:, :8], wake, val[:, 8:]], dim=1)
    head, standardiser = train_linear_probe(train, train_labels, PROBE, 4)
    assert head.in_features == 16 and standardiser.keep.tolist() == [True] * 8 + [False] * 5 + [True] * 8
    assert top1(head, standardiser, val, val_labels) > 95
