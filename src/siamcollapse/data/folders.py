"""Image-folder datasets on disk, without decoding or torch: which files, which labels.

``root/<split>/<class>/<image>``: classes sorted by name, files sorted by name within a class,
hidden entries skipped. Labels are positions in the training split's class list for every
split, so every split must hold the same class folders (``val_classes: same``), or, where the
config allows it (``val_classes: subset``), val may lack some of train's. Torch-free, so that the
workflow can check a dataset before any job (``check_splits``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserInputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
FOLDER_SOURCES = ("embedded", "imagefolder")
SPLITS = ("train", "val")
VAL_CLASSES = ("same", "subset")  # the config's dataset.val_classes


def _visible_children(folder: Path) -> list[Path]:
    """Children sorted by name, hidden entries (``.ipynb_checkpoints``...) skipped."""
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _empty_class_folder(class_dir: Path) -> UserInputError:
    return UserInputError(f"Empty class folder {class_dir}: it holds no images "
                          f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove the folder.")


def _class_dirs(root: Path, split: str) -> list[Path]:
    """The class folders of ``root/split``, sorted by name; errors name what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise UserInputError(f"Dataset root {root} does not exist: check the data root path.")
    split_dir = root / split
    if not split_dir.is_dir():
        raise UserInputError(
            f"Split folder {split_dir} does not exist: an image-folder dataset needs "
            f"{root}/{split}/<class_name>/<images>."
        )
    class_dirs = [p for p in _visible_children(split_dir) if p.is_dir()]
    if not class_dirs:
        raise UserInputError(
            f"No class folders in {split_dir}: put each class's images in {split_dir}/<class_name>/."
        )
    return class_dirs


def _training_classes(root: Path, split: str, class_dirs: list[Path], val_classes: str = "same") -> list[str]:
    """The training split's class list, once ``split`` is shown to hold its classes: all of
    them, or (``val_classes`` 'subset') some of them, with a warning naming those it lacks.

    Labels are positions in that list for every split: sorted per split, a val folder lacking
    one class (or holding a renamed one) would shift every later label without an error.
    """
    if val_classes not in VAL_CLASSES:
        raise ValueError(f"val_classes must be one of {VAL_CLASSES}, not {val_classes!r}")
    classes = [p.name for p in _class_dirs(root, "train")]
    names = [p.name for p in class_dirs]
    extra, missing = sorted(set(names) - set(classes)), sorted(set(classes) - set(names))
    train_dir, split_dir = Path(root) / "train", Path(root) / split
    if missing and not extra and val_classes == "subset":
        print(f"warning: {split_dir} lacks {len(missing)} of the {len(classes)} classes of {train_dir} "
              f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): its accuracies cover only "
              f"the other {len(classes) - len(missing)} (key 'dataset.val_classes' is 'subset')",
              file=sys.stderr, flush=True)
    elif extra or missing:
        found = [f"{split_dir} has {extra} that {train_dir} lacks" if extra else "",
                 f"{train_dir} has {missing} that {split_dir} lacks" if missing else ""]
        allow = "" if extra else " (or set key 'dataset.val_classes' to 'subset' to allow it)"
        raise UserInputError(
            f"The {split} and train splits hold different classes: {'; '.join(f for f in found if f)}. Labels "
            f"are the training split's classes, so every split needs the same class folders{allow}."
        )
    return classes


def scan_image_folder(root: Path, split: str, val_classes: str = "same") -> tuple[list[Path], list[int], list[str]]:
    """List ``root/split/<class>/<image>`` files in deterministic order, without decoding.

    Returns (files, labels, classes); label ``i`` is ``classes[i]``, the training split's class
    list whatever ``split`` (another split must hold the same class folders, or a part of them
    where ``val_classes`` is 'subset').
    """
    class_dirs = _class_dirs(root, split)
    classes = ([p.name for p in class_dirs] if split == "train"
               else _training_classes(root, split, class_dirs, val_classes))
    label_of = {name: label for label, name in enumerate(classes)}
    files: list[Path] = []
    labels: list[int] = []
    for class_dir in class_dirs:
        images = [p for p in _visible_children(class_dir) if _is_image(p)]
        if not images:
            raise _empty_class_folder(class_dir)
        files.extend(images)
        labels.extend([label_of[class_dir.name]] * len(images))
    return files, labels, classes


def check_splits(root: Path, val_classes: str = "same") -> None:
    """Every split exists, holds the training split's class folders (or a part of them, see
    ``scan_image_folder``), and no class folder lacks images: what a stage would otherwise find
    only when it runs. Cheap on ImageNet: each class folder is read only up to its first image."""
    for split in SPLITS:
        class_dirs = _class_dirs(root, split)
        if split != "train":
            _training_classes(root, split, class_dirs, val_classes)
        for class_dir in class_dirs:
            if not any(_is_image(p) for p in class_dir.iterdir() if not p.name.startswith(".")):
                raise _empty_class_folder(class_dir)
