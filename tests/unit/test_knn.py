"""Weighted kNN on features with known structure."""

from __future__ import annotations

import torch

from siamcollapse.evaluation.knn import knn_top1
from tests.helpers.clustered_features import clustered


def test_knn_is_perfect_on_separated_clusters_and_chance_on_noise():
    train, train_labels = clustered(50)
    val, val_labels = clustered(20, seed=1)
    assert knn_top1(train, train_labels, val, val_labels, [1, 20], 0.07) == {1: 100.0, 20: 100.0}
    noise_labels = torch.randint(0, 4, (len(train),), generator=torch.Generator().manual_seed(3))
    acc = knn_top1(train, noise_labels, val, val_labels, [20], 0.07)[20]
    assert acc < 60


def test_knn_caps_k_at_the_training_set_size():
    train, train_labels = clustered(3)
    val, val_labels = clustered(2, seed=1)
    assert knn_top1(train, train_labels, val, val_labels, [200], 0.07)[200] == 100.0


def test_knn_reports_its_progress_over_the_val_chunks(capsys):
    """A long kNN (ImageNet's 50,000 val images against 1.28M) says how far it is; a log gets one
    line when done, with the count of val images scored."""
    train, train_labels = clustered(10)
    val, val_labels = clustered(7, seed=1)
    knn_top1(train, train_labels, val, val_labels, [1], 0.07, chunk=3)
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith(f"kNN: {len(val)}/{len(val)} (100%)")


def test_each_neighbour_votes_with_weight_exp_of_its_similarity_over_the_temperature():
    """One near neighbour of class 0 against two farther ones of class 1: a low temperature lets
    the nearest outvote the pair, a high one makes the votes nearly equal (the pair wins)."""
    train = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    val, truth = torch.tensor([[1.0, 0.1]]), torch.tensor([0])
    assert knn_top1(train, labels, val, truth, [1, 3], 0.07) == {1: 100.0, 3: 100.0}
    assert knn_top1(train, labels, val, truth, [1, 3], 100.0) == {1: 100.0, 3: 0.0}
