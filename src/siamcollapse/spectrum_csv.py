"""The spectrum file of a run (spectrum.csv): its singular values, largest first, with the curves
a person plots from them as extra columns (what `dvc plots` draws), written atomically and read
back exactly. Kept apart from the reports so that extraction depends on nothing but this."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from . import io
from .metrics import cumulative_explained_variance, normalized_spectrum

SPECTRUM_HEADER = "singular_value"
SPECTRUM_LOG_FLOOR = 1e-12


def _check_spectrum(values: np.ndarray, where: str) -> np.ndarray:
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{where}: a spectrum is a non-empty 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{where}: singular values must be finite and non-negative")
    return values


def spectrum_columns(values: np.ndarray) -> dict[str, np.ndarray]:
    """The spectrum and the curves a person plots from it, one row per singular value."""
    normalized = normalized_spectrum(values)
    return {
        "index": np.arange(1, values.size + 1),
        SPECTRUM_HEADER: values,
        "normalized_singular_value": normalized,
        # floored so an exactly collapsed direction stays a finite number in the file
        "log10_normalized_singular_value": np.log10(np.maximum(normalized, SPECTRUM_LOG_FLOOR)),
        "cumulative_explained_variance": cumulative_explained_variance(values),
    }


def write_spectrum(path: str | os.PathLike, values: Iterable[float]) -> None:
    """Write the singular values, largest first, with their curves as CSV columns (atomic).

    ``repr`` of a float64 round-trips exactly, so reading back gives the same array. The
    columns (index, normalised value, its log10, cumulative explained variance) are what
    ``dvc plots`` draws.
    """
    array = np.sort(_check_spectrum(np.asarray(values, dtype=np.float64), str(path)))[::-1]
    columns = spectrum_columns(array)
    rows = zip(*(col.tolist() for col in columns.values()), strict=True)
    lines = [",".join(columns), *(",".join(repr(v) for v in row) for row in rows)]
    io.write_text(path, "\n".join(lines) + "\n")


def read_spectrum(path: str | os.PathLike) -> np.ndarray:
    """Read the ``singular_value`` column of a spectrum CSV as a float64 array, in file order."""
    path = Path(path)
    lines = path.read_text().split()
    header = lines[0].strip().split(",") if lines else []
    if SPECTRUM_HEADER not in header:
        raise ValueError(f"{path}: expected a {SPECTRUM_HEADER!r} column in the header line")
    column = header.index(SPECTRUM_HEADER)
    try:
        values = np.array([float(line.split(",")[column]) for line in lines[1:]], dtype=np.float64)
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: not a number in the spectrum ({err})") from None
    return _check_spectrum(values, str(path))
