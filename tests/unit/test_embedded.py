"""The procedural dataset: deterministic, complete-or-absent, and class = shape only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from siamcollapse.data import embedded
from siamcollapse.errors import UserInputError


def _generate(root: Path, seed: int = 0, **kwargs) -> dict:
    params = {"train_per_class": 2, "val_per_class": 1, "progress": False, **kwargs}
    return embedded.generate(root, seed=seed, **params)


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _pngs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.png"))


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path: Path) -> None:
    _generate(tmp_path / "a", seed=3)
    _generate(tmp_path / "b", seed=3)
    _generate(tmp_path / "c", seed=4)
    a, b, c = (_file_bytes(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    pngs = [k for k in a if k.endswith(".png")]
    assert sum(a[k] != c[k] for k in pngs) == len(pngs)


def test_layout_counts_and_metadata(tiny_dataset: Path) -> None:
    meta = json.loads((tiny_dataset / "dataset.json").read_text())
    assert meta["num_classes"] >= 10
    assert meta["counts"] == {"train": 3 * meta["num_classes"], "val": 2 * meta["num_classes"]}
    assert meta["classes"][:2] == ["00_circle", "01_square"]
    for split, per_class in (("train", 3), ("val", 2)):
        folders = sorted(p.name for p in (tiny_dataset / split).iterdir())
        assert folders == meta["classes"]
        for name in folders:
            files = sorted(p.name for p in (tiny_dataset / split / name).iterdir())
            assert files == [f"{i:05d}.png" for i in range(per_class)]


def test_returned_metadata_equals_dataset_json(tmp_path: Path) -> None:
    meta = _generate(tmp_path / "d", seed=9, num_classes=4)
    assert json.loads((tmp_path / "d" / "dataset.json").read_text()) == meta
    assert meta["seed"] == 9 and len(meta["classes"]) == 4


@pytest.mark.parametrize("size", [24, 40])
def test_images_have_requested_size(tmp_path: Path, size: int) -> None:
    _generate(tmp_path / "d", num_classes=3, image_size=size)
    for path in _pngs(tmp_path / "d"):
        with Image.open(path) as image:
            assert image.size == (size, size) and image.mode == "RGB"


def test_supports_up_to_twelve_distinct_classes_and_rejects_others() -> None:
    names = embedded.class_names(12)
    assert len(set(names)) == 12 and names == sorted(names)
    for bad in (1, embedded.MAX_CLASSES + 1):
        with pytest.raises(ValueError, match="num_classes"):
            embedded.class_names(bad)


def test_shapes_differ_between_classes() -> None:
    """Same nuisances, different class: the images must differ (shapes are distinguishable)."""
    renders = [embedded.render_image(np.random.default_rng(1), c, 32) for c in range(12)]
    for i in range(12):
        for j in range(i + 1, 12):
            assert np.abs(renders[i].astype(int) - renders[j].astype(int)).max() > 30


def test_class_changes_only_the_shape_pixels() -> None:
    """With the same RNG stream every nuisance is identical: pixels off the shapes match."""
    same = []
    for seed in range(20):
        a = embedded.render_image(np.random.default_rng(seed), 0, 32)
        b = embedded.render_image(np.random.default_rng(seed), 4, 32)
        same.append(np.all(a == b, axis=-1).mean())
    assert 0.6 < np.mean(same) < 1.0


def _colour_features(image: np.ndarray) -> np.ndarray:
    """Mean RGB of the centre patch (mostly shape) and of the whole image."""
    h, w = image.shape[:2]
    centre = image[3 * h // 8 : 5 * h // 8, 3 * w // 8 : 5 * w // 8]
    return np.concatenate([centre.mean((0, 1)), image.mean((0, 1))])


def test_colour_statistics_do_not_depend_on_class() -> None:
    """One-way ANOVA across classes: no colour feature may separate the classes."""
    features = np.array(
        [
            [
                _colour_features(
                    embedded.render_image(np.random.default_rng([0, c, i]), c, 32).astype(float)
                )
                for i in range(30)
            ]
            for c in range(10)
        ]
    )  # [class, image, feature]
    k, n = features.shape[:2]
    class_means = features.mean(axis=1)
    between = n * ((class_means - class_means.mean(0)) ** 2).sum(0) / (k - 1)
    within = ((features - class_means[:, None]) ** 2).sum((0, 1)) / (k * (n - 1))
    # F(9, 290) exceeds 3.5 with probability < 0.001 when colour is class-independent.
    assert np.all(between / within < 3.5), between / within


def test_failure_midway_leaves_no_dataset_and_no_temp_dir(tmp_path: Path, monkeypatch) -> None:
    real, calls = embedded.render_image, []

    def flaky(rng, shape_id, size, nuisance):
        calls.append(shape_id)
        if len(calls) == 5:
            raise RuntimeError("killed")
        return real(rng, shape_id, size, nuisance)

    monkeypatch.setattr(embedded, "render_image", flaky)
    with pytest.raises(RuntimeError, match="killed"):
        _generate(tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


def test_failed_regeneration_keeps_previous_dataset(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "d"
    _generate(root, seed=1, num_classes=2)
    before = _file_bytes(root)

    def broken(rng, shape_id, size, nuisance):
        raise RuntimeError("killed")

    monkeypatch.setattr(embedded, "render_image", broken)
    with pytest.raises(RuntimeError):
        _generate(root, seed=2, num_classes=2)
    assert _file_bytes(root) == before
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_regeneration_replaces_previous_dataset(tmp_path: Path) -> None:
    root = tmp_path / "d"
    _generate(root, seed=1, num_classes=3)
    _generate(root, seed=2, num_classes=2)
    assert json.loads((root / "dataset.json").read_text())["seed"] == 2
    assert len(list((root / "train").iterdir())) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_dataset_json_is_written_last_before_install(tmp_path: Path, monkeypatch) -> None:
    root, seen = tmp_path / "d", {}
    real = embedded.write_json

    def spy(path, data):
        seen["pngs"] = len(_pngs(Path(path).parent))
        seen["root_exists"] = root.exists()
        real(path, data)

    monkeypatch.setattr(embedded, "write_json", spy)
    _generate(root, num_classes=3)
    assert seen == {"pngs": 3 * (2 + 1), "root_exists": False}


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="mine"):
        _generate(root)
    assert (root / "notes.txt").read_text() == "keep me"


def test_progress_goes_to_stderr_only_when_asked(tmp_path: Path, capsys) -> None:
    _generate(tmp_path / "a", num_classes=2)
    assert capsys.readouterr().err == ""
    _generate(tmp_path / "b", num_classes=2, progress=True)
    err = capsys.readouterr().err
    assert "6/6" in err and "100%" in err


def _quiet(**changes) -> embedded.Nuisance:
    """No nuisance at all except ``changes``: isolates one factor."""
    return embedded.Nuisance(**{"radius": (0.8, 0.8), "shift": 0.0, "noise": 0.0, **changes})


def test_noise_is_the_only_pixel_difference_it_makes() -> None:
    clean = embedded.render_image(np.random.default_rng(5), 3, 32, _quiet()).astype(float)
    noisy = embedded.render_image(np.random.default_rng(5), 3, 32, _quiet(noise=40.0)).astype(float)
    residual = noisy - clean
    assert 30.0 < residual.std() < 45.0  # clipping at 0 and 255 shrinks it a little
    assert abs(residual.mean()) < 5.0


def test_position_and_scale_vary_only_within_their_ranges() -> None:
    def centroid_and_area(nuisance, seed):
        rng = np.random.default_rng(seed)
        image = embedded.render_image(rng, 0, 64, nuisance).astype(float)
        background = image[0, 0]
        mask = np.abs(image - background).sum(-1) > 30
        ys, xs = np.nonzero(mask)
        return np.array([ys.mean(), xs.mean()]) / 64, mask.mean()

    fixed = [centroid_and_area(_quiet(), s) for s in range(6)]
    moved = [centroid_and_area(_quiet(shift=0.2, radius=(0.4, 0.9)), s) for s in range(30)]
    assert np.ptp([c for c, _ in fixed], axis=0).max() < 0.02
    assert np.ptp([a for _, a in fixed]) < 0.01
    centres = np.array([c for c, _ in moved])
    assert np.abs(centres - 0.5).max() <= 0.2 + 0.02 and np.ptp(centres, axis=0).min() > 0.15
    assert np.ptp([a for _, a in moved]) > 0.2


def test_nuisance_out_of_range_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="embedded.nuisance.shift"):
        _generate(tmp_path / "d", nuisance={"shift": 0.9})
    assert not (tmp_path / "d").exists()


def test_dataset_json_records_the_nuisance_settings(tmp_path: Path) -> None:
    meta = _generate(tmp_path / "d", num_classes=2, nuisance={"noise": 12.5, "rotation": 30})
    assert meta["nuisance"]["noise"] == 12.5 and meta["nuisance"]["rotation"] == 30
    assert meta["nuisance"]["radius"] == list(embedded.Nuisance().radius)
    assert embedded.Nuisance.from_config(meta["nuisance"]) == embedded.Nuisance(noise=12.5, rotation=30)
