"""Seeded, nested fraction subsets of the training set.

One seeded ordering of the training indices is shared by all fractions, and a subset of
fraction f is the first ceil(f x N) entries of it: a smaller subset is always contained in a
larger one. With stratification the ordering interleaves the classes so that every prefix
keeps the class proportions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..io import read_json, write_json


def nested_order(labels: np.ndarray, seed: int, stratified: bool) -> np.ndarray:
    """A permutation of ``range(len(labels))`` whose prefixes are the nested subsets."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if not stratified:
        return rng.permutation(len(labels))
    # Give the j-th shuffled member of a class of size n the key (j + u) / n, u ~ U(0,1):
    # sorting by key spreads every class evenly along the ordering.
    keys = np.empty(len(labels))
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        keys[members] = (np.arange(len(members)) + rng.random()) / len(members)
    tie_break = rng.random(len(labels))
    return np.lexsort((tie_break, keys))


def fixed_sample(total: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``min(size, total)`` items drawn without replacement with ``seed``: the
    same images for every run, whatever its own seed (the label-free metrics' sample)."""
    return np.sort(np.random.default_rng(seed).permutation(total)[: min(size, total)])


def subset_size(fraction: float, num_train: int) -> int:
    if not 0 < fraction <= 1:
        raise UserInputError(f"subset fraction must be in (0, 1], got {fraction}")
    return max(1, math.ceil(fraction * num_train - 1e-9))


def subset_indices(labels: np.ndarray, fraction: float, seed: int, stratified: bool) -> np.ndarray:
    """Sorted training indices of the subset of ``fraction``."""
    order = nested_order(labels, seed, stratified)
    return np.sort(order[: subset_size(fraction, len(order))])


def write_subset(path: str | Path, labels: np.ndarray, fraction: float, seed: int, stratified: bool) -> dict:
    indices = subset_indices(labels, fraction, seed, stratified)
    record = {
        "fraction": fraction,
        "seed": seed,
        "stratified": stratified,
        "num_train": len(labels),
        "count": len(indices),
        "classes_present": len(np.unique(np.asarray(labels)[indices])),
        "indices": indices.tolist(),
    }
    write_json(path, record)
    return record


def read_subset(path: str | Path, num_train: int | None = None) -> np.ndarray:
    """Indices of a subset file, checked against the dataset it will index."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"subset file not found: {path}")
    record = read_json(path)
    indices = np.asarray(record["indices"], dtype=np.int64)
    if num_train is not None and record["num_train"] != num_train:
        raise UserInputError(
            f"subset file {path} was made for {record['num_train']} training images but the dataset "
            f"has {num_train}; regenerate it (the dataset changed)"
        )
    return indices
