"""Atomic file output: a killed job never leaves a file that looks complete.

Every writer here writes to a temporary name in the destination directory and renames it
into place (``os.replace`` is atomic on POSIX within one filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UserInputError


class NoSpaceLeft(UserInputError):
    """A write failed because the filesystem holding the file is full (or over quota)."""


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem that holds ``path`` (which may not exist yet)."""
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def _no_space(path: Path, cause: str) -> NoSpaceLeft:
    device = mount_point(path.parent)
    free = shutil.disk_usage(device).free / 2**20
    return NoSpaceLeft(f"no space left on {device} writing {path} ({cause}; {free:.0f} MiB free there now): free "
                       "some space or point output_dir elsewhere, then rerun; nothing half-written was left")


# torch's zip writer reports a full disk as a RuntimeError without an errno.
_TORCH_WRITE_FAILURES = ("unexpected pos", "file write failed", "PytorchStreamWriter failed writing")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds. A
    full disk is a ``NoSpaceLeft`` naming the filesystem and ``path``; the temporary file goes."""
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
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        tmp_path.unlink(missing_ok=True)
        raise _no_space(path, os.strerror(exc.errno)) from exc
    except RuntimeError as exc:
        if not any(failure in str(exc) for failure in _TORCH_WRITE_FAILURES):
            raise
        tmp_path.unlink(missing_ok=True)
        raise _no_space(path, f"torch: {(str(exc).splitlines() or [''])[0][:120]}") from exc
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
        super().__init__(f"{path} is unreadable ({self.cause}): it is truncated or corrupt; "
                         + (f"moved it to {self.aside}" if self.aside else "delete it")
                         + ", then rerun the workflow (snakemake or dvc repro), which regenerates it with the stage "
                         "that writes it")


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


def load_tensors(*paths: str | os.PathLike) -> tuple[Any, ...]:
    """.npy arrays as torch tensors (sharing their memory): cached features and labels, read by
    the probes with nothing of the extraction code, so that they depend on no augmentation,
    dataset or model code."""
    import torch

    return tuple(torch.from_numpy(load_npy(path)) for path in paths)


def save_figure(path: str | os.PathLike, fig: Any, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format taken from ``path``'s suffix)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
