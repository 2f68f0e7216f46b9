"""An image-folder dataset is checked before any job: every split, the same classes in each, no
empty class folder; each error names the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from siamcollapse import plan
from siamcollapse.config import validate_config
from siamcollapse.data.folders import check_splits
from siamcollapse.errors import UserInputError


def dataset(root: Path, splits: dict[str, dict[str, int]]) -> Path:
    """``{split: {class: number of (empty, never decoded) .png files}}`` under ``root``."""
    for split, classes in splits.items():
        for name, count in classes.items():
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                (root / split / name / f"{i}.png").write_bytes(b"")
    return root


GOOD = {"train": {"a": 2, "b": 1}, "val": {"a": 1, "b": 1}}


def test_a_complete_dataset_passes_and_the_plan_checks_it_for_image_folders(tmp_path: Path):
    root = dataset(tmp_path / "data", GOOD)
    check_splits(root)
    config = validate_config({"dataset": {"source": "imagefolder", "root": str(root)}})
    plan.check_dataset_root(config)
    (root / "val" / "b" / "0.png").unlink()
    with pytest.raises(UserInputError, match=f"Empty class folder {root / 'val' / 'b'}"):
        plan.check_dataset_root(config)


@pytest.mark.parametrize(("splits", "named"), [
    ({"train": {"a": 1}}, "Split folder {root}/val does not exist"),
    ({"train": {"a": 1, "b": 1}, "val": {"a": 1}}, "{root}/train has ['b'] that {root}/val lacks"),
    ({"train": {"a": 1}, "val": {"a": 1, "z": 1}}, "{root}/val has ['z'] that {root}/train lacks"),
    ({"train": {"a": 1, "b": 0}, "val": {"a": 1, "b": 1}}, "Empty class folder {root}/train/b"),
], ids=["no-val", "val-lacks-a-class", "val-has-an-extra-class", "empty-train-class"])
def test_what_a_stage_would_find_late_is_an_error_now(tmp_path: Path, splits, named):
    root = dataset(tmp_path / "data", splits)
    with pytest.raises(UserInputError) as info:
        check_splits(root)
    assert named.format(root=root) in str(info.value)


def test_the_plan_lets_val_lack_a_class_where_the_config_allows_it(tmp_path: Path, capsys):
    root = dataset(tmp_path / "data", {"train": {"a": 1, "b": 1}, "val": {"a": 1}})
    strict = validate_config({"dataset": {"source": "imagefolder", "root": str(root)}})
    with pytest.raises(UserInputError, match="'dataset.val_classes'"):
        plan.check_dataset_root(strict)
    plan.check_dataset_root(validate_config({"dataset": {"source": "imagefolder", "root": str(root),
                                                         "val_classes": "subset"}}))
    assert f"{root / 'val'} lacks 1 of the 2 classes" in capsys.readouterr().err
