"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

# Before torch loads (here, and in every stage process the tests start, which inherit it): the
# pytest workers share the cores with each other's stage processes, and OpenMP threads that spin
# while they wait for work take the cores those need. Beside two busy processes, three stage
# tests took 54 s with spinning threads and 18 s with sleeping ones (5 s alone). The wait policy
# changes how threads idle, not what they compute.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

from siamcollapse.data import embedded


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small embedded dataset (10 classes x 3 train / 2 val, 32 px), generated once.

    Read-only: tests that modify a dataset must generate their own.
    """
    root = tmp_path_factory.mktemp("tiny") / "embedded"
    embedded.generate(root, seed=0, train_per_class=3, val_per_class=2, progress=False)
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked long_chain (the shared local run beside the SLURM run, and the reruns; DVC's
    runs) come first, so that under `make test` (one file per worker at a time, in this order) each starts
    on a worker at once rather than last, when the whole session would wait for it."""
    items.sort(key=lambda item: item.get_closest_marker("long_chain") is None)
