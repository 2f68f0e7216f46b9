"""Loading splits: deterministic order, exact pixels, and errors that name the bad path."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from siamcollapse.data import catalog, sources
from siamcollapse.errors import UserInputError


def _pixels(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1)


def _write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A hand-made image folder: two classes, decoys that must be ignored."""
    rng = np.random.default_rng(0)
    for name in ("b_dog/2.png", "b_dog/10.jpg", "a_cat/x.png"):
        _write_png(tmp_path / "train" / name, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (tmp_path / "train" / "a_cat" / "README.txt").write_text("not an image")
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()
    return tmp_path


# ----------------------------------------------------------------------- image folders


def test_load_embedded_split_shapes_order_and_pixels(tiny_dataset: Path) -> None:
    meta = json.loads((tiny_dataset / "dataset.json").read_text())
    data = sources.load_split("embedded", tiny_dataset, "train", 32, progress=False)
    n = meta["counts"]["train"]
    assert len(data) == n
    assert data.images.shape == (n, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert data.labels.tolist() == [c for c in range(meta["num_classes"]) for _ in range(3)]
    assert data.classes == meta["classes"]
    assert torch.equal(data.images[4], _pixels(tiny_dataset / "train" / "01_square" / "00001.png"))


def test_load_val_split_resized(tiny_dataset: Path) -> None:
    data = sources.load_split("embedded", tiny_dataset, "val", 16, progress=False)
    assert data.images.shape == (20, 3, 16, 16)


def test_scan_orders_by_name_and_skips_non_images(folder: Path) -> None:
    files, labels, classes = sources.scan_image_folder(folder, "train")
    assert classes == ["a_cat", "b_dog"]
    assert [f.name for f in files] == ["x.png", "10.jpg", "2.png"]
    assert labels == [0, 1, 1]
    assert catalog.scan_labels("imagefolder", folder, "train") == (labels, classes)
    assert catalog.count_split("imagefolder", folder, "train") == 3


def test_resize_center_crop_keeps_the_middle() -> None:
    strip = np.zeros((20, 60, 3), np.uint8)
    strip[:, 20:40] = (0, 255, 0)
    out = np.asarray(sources.resize_center_crop(Image.fromarray(strip), 10))
    assert out.shape == (10, 10, 3)
    assert np.all(out[:, 2:8] == (0, 255, 0))


def test_resize_center_crop_is_the_authors_resize_256_center_crop_224() -> None:
    from torchvision import transforms

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    reference = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
                                    transforms.CenterCrop(224)])
    assert np.array_equal(np.asarray(sources.resize_center_crop(image, 224)), np.asarray(reference(image)))


def test_stream_matches_in_memory_loader(tiny_dataset: Path) -> None:
    stream = sources.ImageFolderStream(tiny_dataset, "val", 32)
    data = sources.load_image_folder(tiny_dataset, "val", 32, progress=False)
    assert len(stream) == len(data)
    image, label = stream[7]
    assert image.dtype == torch.uint8 and torch.equal(image, data.images[7])
    assert label == int(data.labels[7])
    custom = sources.ImageFolderStream(
        tiny_dataset, "val", 32, transform=lambda im: im.resize((8, 8))
    )
    assert custom[0][0].shape == (3, 8, 8)


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (lambda root: shutil.rmtree(root), "{root}"),
        (lambda root: shutil.rmtree(root / "train"), "{root}/train"),
        (lambda root: [shutil.rmtree(p) for p in (root / "train").iterdir()], "{root}/train"),
        (
            lambda root: [p.unlink() for p in (root / "train" / "b_dog").iterdir()],
            "{root}/train/b_dog",
        ),
    ],
    ids=["missing-root", "missing-split", "no-class-folders", "empty-class-folder"],
)
def test_folder_errors_name_the_path(folder: Path, break_it, expected: str) -> None:
    break_it(folder)
    with pytest.raises(UserInputError) as info:
        sources.load_split("imagefolder", folder, "train", 8, progress=False)
    assert expected.format(root=folder) in str(info.value)


def _with_val(folder: Path, classes: list[str]) -> Path:
    rng = np.random.default_rng(1)
    for name in classes:
        _write_png(folder / "val" / name / "v.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    return folder


def test_val_labels_are_the_training_classes(folder: Path) -> None:
    _with_val(folder, ["a_cat", "b_dog"])
    _, labels, classes = sources.scan_image_folder(folder, "val")
    assert classes == ["a_cat", "b_dog"] and labels == [0, 1]


@pytest.mark.parametrize(("val_classes", "named"), [
    (["b_dog"], "has ['a_cat'] that {root}/val lacks"),  # a class missing: b_dog would become label 0
    (["a_cat", "c_cow"], "{root}/val has ['c_cow'] that {root}/train lacks"),  # a renamed class
], ids=["val-lacks-a-class", "val-class-renamed"])
def test_splits_with_different_classes_are_an_error_naming_both_folders(folder: Path, val_classes, named) -> None:
    _with_val(folder, val_classes)
    with pytest.raises(UserInputError) as info:
        sources.load_split("imagefolder", folder, "val", 8, progress=False)
    assert named.format(root=folder) in str(info.value) and "same class folders" in str(info.value)
    with pytest.raises(UserInputError, match="different classes"):
        sources.ImageFolderStream(folder, "val", 8)
    with pytest.raises(UserInputError, match="different classes"):
        catalog.scan_labels("imagefolder", folder, "val")


def test_val_may_lack_training_classes_where_the_config_allows_it_with_a_warning(folder: Path, capsys) -> None:
    _with_val(folder, ["b_dog"])
    images = sources.load_split("imagefolder", folder, "val", 8, progress=False, val_classes="subset")
    assert images.classes == ["a_cat", "b_dog"] and images.labels.tolist() == [1]  # b_dog keeps train's label
    warning = capsys.readouterr().err
    assert f"warning: {folder / 'val'} lacks 1 of the 2 classes" in warning and "a_cat" in warning
    assert sources.ImageFolderStream(folder, "val", 8, val_classes="subset").labels == [1]
    assert catalog.scan_labels("imagefolder", folder, "val", val_classes="subset")[0] == [1]


def test_a_val_class_train_lacks_is_an_error_even_where_val_may_be_a_subset(folder: Path) -> None:
    _with_val(folder, ["a_cat", "c_cow"])
    with pytest.raises(UserInputError, match=r"has \['c_cow'\] that .*train lacks") as info:
        sources.load_split("imagefolder", folder, "val", 8, progress=False, val_classes="subset")
    assert "val_classes" not in str(info.value)  # no setting allows a class train has no label for


def test_the_error_for_a_missing_val_class_names_the_setting_that_allows_it(folder: Path) -> None:
    _with_val(folder, ["b_dog"])
    with pytest.raises(UserInputError, match="set key 'dataset.val_classes' to 'subset'"):
        catalog.scan_labels("imagefolder", folder, "val")


def test_empty_class_folder_message(folder: Path) -> None:
    for path in (folder / "train" / "b_dog").iterdir():
        path.unlink()
    with pytest.raises(UserInputError, match="(?i)empty class folder"):
        sources.scan_image_folder(folder, "train")


def test_corrupt_image_names_the_file(folder: Path) -> None:
    bad = folder / "train" / "a_cat" / "y.png"
    bad.write_bytes(b"definitely not a png")
    with pytest.raises(UserInputError, match=str(bad)):
        sources.load_split("imagefolder", folder, "train", 8, progress=False)
    with pytest.raises(UserInputError, match=str(bad)):
        sources.ImageFolderStream(folder, "train", 8)[1]


def test_unknown_source_and_split(folder: Path) -> None:
    with pytest.raises(UserInputError, match="imagenet.*cifar10"):
        sources.load_split("imagenet", folder, "train", 8)
    with pytest.raises(UserInputError, match="'test'"):
        catalog.scan_labels("imagefolder", folder, "test")


def test_embedded_source_requires_dataset_json(folder: Path) -> None:
    with pytest.raises(UserInputError, match="dataset.json"):
        sources.load_split("embedded", folder, "train", 8, progress=False)


# ----------------------------------------------------------------------- torchvision


def _pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def _fake_cifar10(root: Path, per_batch: int = 2) -> tuple[np.ndarray, list[int]]:
    """The real on-disk format (bytes keys, rows of 1024 R + 1024 G + 1024 B)."""
    folder = root / "cifar-10-batches-py"
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6 * per_batch, 3, 32, 32), dtype=np.uint8)
    labels = [i % 10 for i in range(6 * per_batch)]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        part = slice(b * per_batch, (b + 1) * per_batch)
        batch = {b"data": images[part].reshape(per_batch, -1), b"labels": labels[part]}
        _pickle(folder / name, batch)
    _pickle(folder / "batches.meta", {b"label_names": [f"c{i}".encode() for i in range(10)]})
    return images, labels


def test_fake_cifar10_loads_exact_pixels(tmp_path: Path) -> None:
    images, labels = _fake_cifar10(tmp_path)
    train = sources.load_split("cifar10", tmp_path, "train", 32)
    assert torch.equal(train.images, torch.from_numpy(images[:10]))
    assert train.labels.tolist() == labels[:10] and train.labels.dtype == torch.int64
    assert train.classes == [f"c{i}" for i in range(10)]
    val = sources.load_split("cifar10", tmp_path, "val", 32)
    assert torch.equal(val.images, torch.from_numpy(images[10:]))
    assert catalog.scan_labels("cifar10", tmp_path, "val") == (labels[10:], train.classes)


def test_cifar_resize_to_other_size(tmp_path: Path) -> None:
    _fake_cifar10(tmp_path)
    data = sources.load_torchvision("cifar10", tmp_path, "train", 16)
    assert data.images.shape == (10, 3, 16, 16) and data.images.dtype == torch.uint8


def test_resize_uint8_keeps_constants_and_is_chunk_independent() -> None:
    flat = torch.full((3, 3, 32, 32), 77, dtype=torch.uint8)
    assert torch.all(sources.resize_uint8(flat, 20) == 77)
    noisy = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(sources.resize_uint8(noisy, 12, chunk=2), sources.resize_uint8(noisy, 12))


def test_fake_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for split in ("train", "test"):
        _pickle(folder / split, {"data": data, "fine_labels": [5, 7], "coarse_labels": [0, 1]})
    _pickle(folder / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})
    loaded = sources.load_split("cifar100", tmp_path, "val", 32)
    assert loaded.labels.tolist() == [5, 7] and len(loaded.classes) == 100
    assert torch.equal(loaded.images.reshape(2, -1), torch.from_numpy(data))


def test_fake_stl10_is_read_column_major(tmp_path: Path) -> None:
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (2, 3, 96, 96), dtype=np.uint8)
    for split in ("train", "test"):
        images.transpose(0, 1, 3, 2).tofile(folder / f"{split}_X.bin")
        np.array([1, 10], np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"s{i}" for i in range(10)) + "\n")
    loaded = sources.load_split("stl10", tmp_path, "train", 96)
    assert torch.equal(loaded.images, torch.from_numpy(images))
    assert loaded.labels.tolist() == [0, 9] and loaded.classes[9] == "s9"
    assert catalog.scan_labels("stl10", tmp_path, "val") == ([0, 9], loaded.classes)


@pytest.mark.parametrize(
    ("name", "folder"), [("cifar10", "cifar-10-batches-py"), ("stl10", "stl10_binary")]
)
def test_missing_torchvision_dataset_names_path_and_never_downloads(
    tmp_path: Path, name: str, folder: str
) -> None:
    with pytest.raises(UserInputError) as info:
        sources.load_split(name, tmp_path, "train", 32)
    message = str(info.value)
    assert str(tmp_path / folder) in message and "never downloads" in message
    assert list(tmp_path.iterdir()) == []


def test_partial_cifar_names_missing_file(tmp_path: Path) -> None:
    _fake_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(UserInputError, match="data_batch_3"):
        catalog.count_split("cifar10", tmp_path, "train")
