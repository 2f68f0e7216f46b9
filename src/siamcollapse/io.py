"""Atomic file output: a killed job never leaves a file that looks complete.

Every writer here writes to a temporary name in the destination directory and renames it
into place (``os.replace`` is atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UserInputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class UnreadableFile(UserInputError):
    """A file a stage reads is truncated or corrupt. The file is moved aside (``<name>.unreadable``),
    so that the next run of either engine finds it missing and regenerates it with the stage that
    writes it; the message names both paths."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        self.path = path
        self.cause = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        self.aside: Path | None = path.with_name(path.name + ".unreadable")
        try:
            path.replace(self.aside)
        except OSError:  # a read-only tree: the user deletes it
            self.aside = None
        todo = (f"moved it to {self.aside}: rerun the workflow (snakemake or dvc repro), which regenerates it"
                if self.aside else "delete it and rerun the workflow (snakemake or dvc repro), which regenerates it")
        super().__init__(f"{path} is unreadable ({self.cause}): it is truncated or corrupt; {todo} with the "
                         "stage that writes it")


def load_torch(path: str | os.PathLike) -> Any:
    """``torch.load`` of a file this pipeline wrote (on the CPU); an unreadable file is an
    ``UnreadableFile`` naming it, never a bare PytorchStreamReader error."""
    import pickle

    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise UnreadableFile(path, exc) from exc


def load_npy(path: str | os.PathLike) -> Any:
    """``numpy.load`` of an .npy array, with the same error as ``load_torch`` when unreadable."""
    import numpy as np

    path = Path(path)
    try:
        return np.load(path)
    except (ValueError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise UnreadableFile(path, exc) from exc


def save_figure(path: str | os.PathLike, fig: Any, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format taken from ``path``'s suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
