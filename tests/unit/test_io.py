"""Atomic writes: a full disk is one error naming the filesystem and the file, and leaves nothing
half-written (the writes fail for real: /dev/full answers every write with ENOSPC)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from siamcollapse.io import NoSpaceLeft, atomic_path, mount_point, write_text

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not FULL.exists(), reason="needs Linux's /dev/full")


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_full_disk_names_the_filesystem_and_the_file_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "run.json"
    write_text(target, "complete\n")
    with pytest.raises(NoSpaceLeft) as error, atomic_path(target), open(FULL, "w") as full:
        full.write("x" * 4096)
        full.flush()
    assert f"no space left on {mount_point(tmp_path)} writing {target}" in str(error.value)
    assert leftovers(tmp_path) == ["run.json"] and target.read_text() == "complete\n"


def test_torchs_writer_failing_on_a_full_disk_is_the_same_error(tmp_path):
    target = tmp_path / "checkpoint.pt"
    with pytest.raises(NoSpaceLeft, match=f"writing {target} \\(torch: "), atomic_path(target):
        torch.save({"weights": torch.zeros(1024)}, str(FULL))
    assert leftovers(tmp_path) == []


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(RuntimeError, match="something else"), atomic_path(tmp_path / "x"):
        raise RuntimeError("something else")
