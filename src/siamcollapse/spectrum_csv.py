"""The spectrum file of a run (spectrum.csv): its singular values, largest first, with the curves
a person plots from them as extra columns (what `dvc plots` draws), written atomically and read
back exactly. Kept apart from the reports so that extraction depends on nothing but this.

A run has four spectra (``SPECTRUM_VARIANTS``): train and val features, raw (the paper's) and
L2-normalised per image (the authors' ``--normalize``). The headline, train raw, is the
``singular_value`` column with its curves; the others are one column each,
``singular_value_<variant>``, on the same rows (every variant has d values).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from . import io
from .metrics import cumulative_explained_variance, normalized_spectrum

SPECTRUM_HEADER = "singular_value"
SPECTRUM_VARIANTS = ("train_raw", "train_l2", "val_raw", "val_l2")  # <split>_<raw|l2>
HEADLINE_VARIANT = SPECTRUM_VARIANTS[0]
SPECTRUM_LOG_FLOOR = 1e-12


def _check_spectrum(values: np.ndarray, where: str) -> np.ndarray:
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"{where}: a spectrum is a non-empty 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{where}: singular values must be finite and non-negative")
    return values


def variant_column(variant: str) -> str:
    """The column of one spectrum variant (the headline's is ``singular_value``)."""
    if variant not in SPECTRUM_VARIANTS:
        raise ValueError(f"unknown spectrum variant {variant!r}; use one of {', '.join(SPECTRUM_VARIANTS)}")
    return SPECTRUM_HEADER if variant == HEADLINE_VARIANT else f"{SPECTRUM_HEADER}_{variant}"


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


def _descending(values: Iterable[float], where: str) -> np.ndarray:
    return np.sort(_check_spectrum(np.asarray(values, dtype=np.float64), where))[::-1]


def write_spectrum(path: str | os.PathLike, values: Iterable[float] | Mapping[str, Iterable[float]]) -> None:
    """Write the singular values, largest first, with their curves as CSV columns (atomic).

    ``values`` is the headline spectrum, or ``{variant: values}`` holding the headline and any
    other variants (all of one length). ``repr`` of a float64 round-trips exactly, so reading
    back gives the same arrays. The columns (index, normalised value, its log10, cumulative
    explained variance) are what ``dvc plots`` draws.
    """
    spectra = dict(values) if isinstance(values, Mapping) else {HEADLINE_VARIANT: values}
    unknown = sorted(set(spectra) - set(SPECTRUM_VARIANTS))
    if HEADLINE_VARIANT not in spectra or unknown:
        raise ValueError(f"{path}: spectra are {', '.join(SPECTRUM_VARIANTS)}, the headline "
                         f"{HEADLINE_VARIANT!r} among them; got {', '.join(spectra)}")
    arrays = {variant: _descending(spectra[variant], f"{path} ({variant})")
              for variant in SPECTRUM_VARIANTS if variant in spectra}
    if len({a.size for a in arrays.values()}) != 1:
        raise ValueError(f"{path}: the spectrum variants differ in length: "
                         f"{ {v: a.size for v, a in arrays.items()} }")
    columns = {**spectrum_columns(arrays.pop(HEADLINE_VARIANT)),
               **{variant_column(v): a for v, a in arrays.items()}}
    rows = zip(*(col.tolist() for col in columns.values()), strict=True)
    lines = [",".join(columns), *(",".join(repr(v) for v in row) for row in rows)]
    io.write_text(path, "\n".join(lines) + "\n")


def read_spectrum(path: str | os.PathLike, variant: str = HEADLINE_VARIANT) -> np.ndarray:
    """Read one variant's column (default: the headline's ``singular_value``) of a spectrum CSV as a
    float64 array, in file order."""
    path = Path(path)
    name = variant_column(variant)
    lines = path.read_text().split()
    header = lines[0].strip().split(",") if lines else []
    if name not in header:
        raise ValueError(f"{path}: expected a {name!r} column in the header line")
    column = header.index(name)
    try:
        values = np.array([float(line.split(",")[column]) for line in lines[1:]], dtype=np.float64)
    except (ValueError, IndexError) as err:
        raise ValueError(f"{path}: not a number in the spectrum ({err})") from None
    return _check_spectrum(values, str(path))
