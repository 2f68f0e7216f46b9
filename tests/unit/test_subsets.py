"""Nested, seeded, optionally stratified subsets."""

import itertools

import numpy as np
import pytest

from siamcollapse.data.subsets import nested_order, read_subset, subset_indices, write_subset
from siamcollapse.errors import UserInputError

LABELS = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 40, 30, 20, 10])
FRACTIONS = [0.01, 0.05, 0.1, 0.2, 0.5, 1.0]


@pytest.mark.parametrize("stratified", [True, False])
def test_smaller_fractions_are_contained_in_larger_ones(stratified):
    subsets = [set(subset_indices(LABELS, f, seed=3, stratified=stratified)) for f in FRACTIONS]
    for small, large in itertools.pairwise(subsets):
        assert small < large
    assert subsets[-1] == set(range(len(LABELS)))


def test_sizes_are_ceil_of_fraction_times_n():
    for f in FRACTIONS:
        assert len(subset_indices(LABELS, f, 0, True)) == int(np.ceil(f * len(LABELS)))


def test_same_seed_same_subset_other_seed_other_subset():
    a = subset_indices(LABELS, 0.2, 1, True)
    assert np.array_equal(a, subset_indices(LABELS, 0.2, 1, True))
    assert not np.array_equal(a, subset_indices(LABELS, 0.2, 2, True))


def test_stratified_subsets_keep_class_proportions():
    counts = np.bincount(LABELS)
    for f in [0.1, 0.2, 0.5]:
        chosen = np.bincount(LABELS[subset_indices(LABELS, f, 0, True)], minlength=10)
        assert np.all(np.abs(chosen - f * counts) <= 1.0 + 1e-9), (f, chosen, f * counts)


def test_order_is_a_permutation():
    order = nested_order(LABELS, 0, True)
    assert sorted(order.tolist()) == list(range(len(LABELS)))


def test_subset_file_round_trip_and_dataset_mismatch(tmp_path):
    path = tmp_path / "s.json"
    record = write_subset(path, LABELS, 0.1, 0, True)
    assert record["count"] == 55 and record["classes_present"] == 10
    assert np.array_equal(read_subset(path, len(LABELS)), subset_indices(LABELS, 0.1, 0, True))
    with pytest.raises(UserInputError, match="regenerate"):
        read_subset(path, len(LABELS) + 1)
    with pytest.raises(UserInputError, match="not found"):
        read_subset(tmp_path / "missing.json")


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_impossible_fraction_is_rejected(bad):
    with pytest.raises(UserInputError, match="fraction"):
        subset_indices(LABELS, bad, 0, True)
