"""Weighted k-nearest-neighbour classification on L2-normalised features (cosine similarity).

Each of the k nearest training features votes for its class with weight exp(sim / T), as in
InstDisc/DINO. Several k are reported together; none is chosen on the validation set.

NumPy, not torch: the kNN stage reads two cached arrays and does one matrix product per chunk,
and a process that imports no torch starts in a fraction of the time (nine kNN jobs in the
test workflow alone).
"""

from __future__ import annotations

import numpy as np

from ..progress import report as report_progress

_NORM_EPS = 1e-12  # as torch.nn.functional.normalize


def _normalized(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), _NORM_EPS)


def _nearest(similarity: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k largest similarities, the largest first."""
    top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def knn_top1(train: np.ndarray, train_labels: np.ndarray, val: np.ndarray, val_labels: np.ndarray,
             ks: list[int], temperature: float, chunk: int = 1024) -> dict[int, float]:
    """Top-1 accuracy (%) on ``val`` for every k in ``ks`` (k is capped at the training set size)."""
    train, val = _normalized(train), _normalized(val)
    train_labels, val_labels = np.asarray(train_labels), np.asarray(val_labels)
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    k_max = min(max(ks), len(train))
    correct = dict.fromkeys(ks, 0)
    for start in range(0, len(val), chunk):
        similarity = val[start:start + chunk] @ train.T
        neighbours = _nearest(similarity, k_max)
        weights = np.exp(np.take_along_axis(similarity, neighbours, axis=1) / np.float32(temperature))
        votes = np.zeros((len(neighbours), k_max, num_classes), dtype=np.float32)  # one-hot votes, weighted
        np.put_along_axis(votes, train_labels[neighbours][..., None], weights[..., None], axis=2)
        truth = val_labels[start:start + chunk]
        for k in ks:
            predicted = votes[:, : min(k, k_max)].sum(axis=1).argmax(axis=1)
            correct[k] += int((predicted == truth).sum())
        report_progress("kNN", min(start + chunk, len(val)), len(val))
    return {k: 100.0 * correct[k] / len(val) for k in ks}
