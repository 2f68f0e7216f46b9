"""A run's spectrum file with its four variants (train/val, raw/L2-normalised) on one set of rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from siamcollapse.spectrum_csv import SPECTRUM_VARIANTS, read_spectrum, write_spectrum


def spectra(d: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {variant: np.sort(rng.random(d))[::-1] * (i + 1) for i, variant in enumerate(SPECTRUM_VARIANTS)}


def test_every_variant_reads_back_exactly_and_the_headline_is_the_default(tmp_path: Path):
    values = spectra()
    write_spectrum(tmp_path / "s.csv", values)
    for variant, expected in values.items():
        np.testing.assert_array_equal(read_spectrum(tmp_path / "s.csv", variant), expected)
    np.testing.assert_array_equal(read_spectrum(tmp_path / "s.csv"), values["train_raw"])


def test_a_file_of_the_headline_alone_has_no_other_variant(tmp_path: Path):
    write_spectrum(tmp_path / "s.csv", spectra()["train_raw"])
    with pytest.raises(ValueError, match="singular_value_val_l2"):
        read_spectrum(tmp_path / "s.csv", "val_l2")


@pytest.mark.parametrize("change", ["no headline", "unknown variant", "lengths differ"])
def test_inconsistent_variants_are_rejected_before_anything_is_written(tmp_path: Path, change: str):
    values = spectra()
    if change == "no headline":
        del values["train_raw"]
    elif change == "unknown variant":
        values["test_raw"] = values["val_raw"]
    else:
        values["val_l2"] = values["val_l2"][:-1]
    with pytest.raises(ValueError):
        write_spectrum(tmp_path / "s.csv", values)
    assert not (tmp_path / "s.csv").exists()


def test_an_unknown_variant_name_is_an_error_on_reading(tmp_path: Path):
    write_spectrum(tmp_path / "s.csv", spectra())
    with pytest.raises(ValueError, match="unknown spectrum variant"):
        read_spectrum(tmp_path / "s.csv", "train")
