"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

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
    """Files marked long_chain (the shared local run and its reruns, the SLURM cluster) come
    first, so that under `make test` (one file per worker at a time, in this order) each starts
    on a worker at once rather than last, when the whole session would wait for it."""
    items.sort(key=lambda item: item.get_closest_marker("long_chain") is None)
