"""Reading figures back: each Figure object captured just before it is saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.image as mimage

from siamcollapse import io


class Capture:
    """Wraps io.save_figure: keeps each Figure (by file name) and still writes the file.

    Use with ``monkeypatch.setattr(io, "save_figure", capture)``.
    """

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {}
        self._save = io.save_figure

    def __call__(self, path: Any, fig: Any, **kwargs: Any) -> None:
        self.figures[Path(path).name] = fig
        self._save(path, fig, **kwargs)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_valid_pngs(paths: list[Path]) -> None:
    """Every file a PNG of a size a person can read."""
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC, path.name
        height, width, channels = mimage.imread(path).shape
        assert 400 <= width <= 4000 and 300 <= height <= 4000 and channels in (3, 4), path.name
