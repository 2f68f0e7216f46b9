"""Weighted k-nearest-neighbour classification on L2-normalised features (cosine similarity).

Each of the k nearest training features votes for its class with weight exp(sim / T), as in
InstDisc/DINO. Several k are reported together; none is chosen on the validation set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..progress import report as report_progress


def knn_top1(train: torch.Tensor, train_labels: torch.Tensor, val: torch.Tensor, val_labels: torch.Tensor,
             ks: list[int], temperature: float, chunk: int = 1024) -> dict[int, float]:
    """Top-1 accuracy (%) on ``val`` for every k in ``ks`` (k is capped at the training set size)."""
    train = F.normalize(train.float(), dim=1)
    val = F.normalize(val.float(), dim=1)
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    k_max = min(max(ks), len(train))
    correct = {k: 0 for k in ks}
    for start in range(0, len(val), chunk):
        similarity, neighbours = (val[start:start + chunk] @ train.T).topk(k_max, dim=1)
        weights = (similarity / temperature).exp()
        votes_of = F.one_hot(train_labels[neighbours], num_classes).float() * weights[..., None]
        truth = val_labels[start:start + chunk]
        for k in ks:
            predicted = votes_of[:, : min(k, k_max)].sum(dim=1).argmax(dim=1)
            correct[k] += int((predicted == truth).sum())
        report_progress("kNN", min(start + chunk, len(val)), len(val))
    return {k: 100.0 * correct[k] / len(val) for k in ks}
