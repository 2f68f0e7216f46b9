"""A procedural image-classification dataset that ships with the code (no download).

Each class is a SHAPE; everything else is a nuisance drawn per image independently of the
class (``Nuisance``): the grey levels of shape and background, position, scale and strong pixel
noise by default; optionally random RGB colours, rotation, a background texture, shading of the
shape and a distractor blob. The default is designed so that invariance learning pays off within
a few hundred steps on a CPU: the nuisances a Siamese method's augmentations randomise (grey
levels by the jitter's brightness and contrast, position and scale by the crop, pixel noise by
resampling every crop) dominate what an untrained network and a linear classifier on pixels see,
while the shape survives every augmentation. Random RGB colours are not the default: hue jitter
of 0.1 leaves them a shortcut (two views of one image share their colours, so SimSiam matches
views by colour and learns little shape). The harder generator-version-2 design is
``Nuisance.v2()``.

Images are written in ImageFolder layout (``root/{train,val}/<class>/<index:05d>.png``)
plus ``root/dataset.json``. Generation is deterministic per image (the RNG is seeded by
``[seed, split, class, index]``) and atomic: everything is written into a temporary
sibling directory that is renamed to ``root`` only once complete.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from siamcollapse.errors import UserInputError
from siamcollapse.io import write_json
from siamcollapse.progress import report as report_progress

GENERATOR_VERSION = 3
SUPERSAMPLE = 4
SPLIT_IDS = {"train": 0, "val": 1}
TEXTURES = ("plain", "stripes", "checker", "gradient", "blotches")
COLOURS = ("gray", "rgb")


@dataclass(frozen=True)
class Nuisance:
    """How much each class-independent factor varies (the config's ``embedded.nuisance``)."""

    colour: str = "gray"  # 'gray': grey levels (what the jitter's brightness and contrast randomise); 'rgb'
    radius: tuple[float, float] = (0.7, 0.9)  # shape radius, as a fraction of half the side
    shift: float = 0.1  # largest offset of the shape's centre, as a fraction of the side
    rotation: float = 0.0  # largest rotation either way, in degrees
    noise: float = 50.0  # std of the Gaussian pixel noise, in 0-255 units
    texture: float = 0.0  # largest contrast of a background texture (0: plain background)
    shading: float = 0.0  # largest depth of a texture shading the shape (0: flat colour)
    distractor_p: float = 0.0  # probability of a small blob behind the shape

    def __post_init__(self) -> None:
        low, high = self.radius
        checks = {
            "colour": self.colour in COLOURS,
            "radius": 0.0 < low <= high <= 1.0,
            "shift": 0.0 <= self.shift <= 0.5,
            "rotation": 0.0 <= self.rotation <= 180.0,
            "noise": self.noise >= 0.0,
            "texture": 0.0 <= self.texture <= 1.0,
            "shading": 0.0 <= self.shading <= 1.0,
            "distractor_p": 0.0 <= self.distractor_p <= 1.0,
        }
        for key, ok in checks.items():
            if not ok:
                raise UserInputError(f"config: key 'embedded.nuisance.{key}': {getattr(self, key)} is out of range")

    @classmethod
    def from_config(cls, settings: dict | None) -> Nuisance:
        settings = dict(settings or {})
        if "radius" in settings:
            settings["radius"] = tuple(settings["radius"])
        return cls(**settings)

    @classmethod
    def v2(cls) -> Nuisance:
        """The generator-version-2 design: too hard to learn in a CPU budget (kept for comparison)."""
        return cls(colour="rgb", radius=(0.5, 0.9), shift=0.2, rotation=180.0, noise=3.0, texture=0.35, shading=0.4,
                   distractor_p=0.25)

# A shape is a list of (polygon in unit coordinates within the unit disc, fill 255 or 0);
# later polygons are drawn over earlier ones, so fill 0 cuts holes.
Polygon = np.ndarray
ShapeOps = list[tuple[Polygon, int]]


def _regular(n: int, radius: float = 1.0, phase: float = math.pi / 2, centre=(0.0, 0.0)) -> Polygon:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1)


def _star(points: int = 5, inner: float = 0.45) -> Polygon:
    outer = _regular(2 * points)
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return outer * radii[:, None]


def _heart() -> Polygon:
    t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], 1)
    pts -= pts.mean(0)
    return pts / np.linalg.norm(pts, axis=1).max()


def _half_disc() -> Polygon:
    t = np.linspace(0, np.pi, 33)
    return np.stack([np.cos(t), np.sin(t) - 0.4], 1)


def _poly(*points: tuple[float, float]) -> Polygon:
    return np.array(points, dtype=np.float64)


SHAPES: dict[str, ShapeOps] = {
    "circle": [(_regular(64), 255)],
    "square": [(_regular(4, phase=math.pi / 4), 255)],
    "triangle": [(_regular(3), 255)],
    "plus": [
        (
            _poly(
                (-0.3, -1),
                (0.3, -1),
                (0.3, -0.3),
                (1, -0.3),
                (1, 0.3),
                (0.3, 0.3),
                (0.3, 1),
                (-0.3, 1),
                (-0.3, 0.3),
                (-1, 0.3),
                (-1, -0.3),
                (-0.3, -0.3),
            ),
            255,
        )
    ],
    "star": [(_star(), 255)],
    "ring": [(_regular(64), 255), (_regular(64, radius=0.55), 0)],
    "hexagon": [(_regular(6, phase=0.0), 255)],
    "diamond": [(_poly((0, 1), (0.5, 0), (0, -1), (-0.5, 0)), 255)],
    "crescent": [(_regular(64), 255), (_regular(64, radius=0.85, centre=(0.45, 0.0)), 0)],
    "arrow": [
        (
            _poly((-1, -0.2), (0.2, -0.2), (0.2, -0.6), (1, 0), (0.2, 0.6), (0.2, 0.2), (-1, 0.2)),
            255,
        )
    ],
    "lshape": [
        (_poly((-0.6, -0.9), (-0.1, -0.9), (-0.1, 0.4), (0.7, 0.4), (0.7, 0.9), (-0.6, 0.9)), 255)
    ],
    "heart": [(_heart(), 255)],
    "half_disc": [(_half_disc(), 255)],
    "bowtie": [
        (_poly((-1, -0.8), (0, 0), (-1, 0.8)), 255),
        (_poly((1, -0.8), (0, 0), (1, 0.8)), 255),
    ],
}
SHAPE_NAMES = tuple(SHAPES)
MIN_CLASSES = 2
MAX_CLASSES = len(SHAPE_NAMES)


def class_names(num_classes: int) -> list[str]:
    """Readable, sortable class names (``00_circle``...): folder order = label order."""
    if not MIN_CLASSES <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f"num_classes must be in [{MIN_CLASSES}, {MAX_CLASSES}], got {num_classes}"
        )
    return [f"{i:02d}_{SHAPE_NAMES[i]}" for i in range(num_classes)]


# --------------------------------------------------------------------------- rendering


def _coverage_mask(
    ops: ShapeOps, centre: np.ndarray, radius: float, angle: float, size: int
) -> np.ndarray:
    """Antialiased coverage in [0,1] (size x size): drawn at SUPERSAMPLE x, box-downsampled."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    for polygon, fill in ops:
        pts = (polygon @ rot.T * radius + centre) * SUPERSAMPLE
        draw.polygon([tuple(p) for p in pts.tolist()], fill=fill)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)[..., None] / 255.0


@functools.lru_cache(maxsize=8)
def _unit_grid(size: int) -> np.ndarray:
    """Pixel coordinates (y, x) in [0, 1), shared read-only by every image of one size."""
    grid = np.mgrid[0:size, 0:size].astype(np.float32) / size
    grid.flags.writeable = False
    return grid


def _texture_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """A background pattern in [0,1] (size x size) of a random kind, frequency and phase."""
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    yy, xx = _unit_grid(size)
    theta = rng.uniform(0, np.pi)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    freq = rng.uniform(1.5, 6.0)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "plain":
        return np.zeros((size, size), np.float32)
    if kind == "stripes":
        return 0.5 + 0.5 * np.sin(2 * np.pi * freq * u + phase)
    if kind == "checker":
        return (np.sin(2 * np.pi * freq * u + phase) * np.sin(2 * np.pi * freq * v) > 0).astype(
            np.float32
        )
    if kind == "gradient":
        return (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
    field = np.zeros((size, size), np.float32)
    for _ in range(rng.integers(2, 6)):
        cx, cy = rng.uniform(0, 1, 2)
        sigma = rng.uniform(0.08, 0.25)
        field += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    return field / field.max()


def _random_colours(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """``n`` random colours (n x 3, 0-255): independent channels, or one grey level each."""
    if colour == "gray":
        return np.repeat(rng.uniform(0, 255, (n, 1)), 3, axis=1).astype(np.float32)
    return rng.uniform(0, 255, (n, 3)).astype(np.float32)


def _background(rng: np.random.Generator, size: int, nuisance: Nuisance) -> np.ndarray:
    base, other = _random_colours(rng, 2, nuisance.colour)
    texture = nuisance.texture
    if texture == 0.0:
        return np.broadcast_to(base, (size, size, 3)).copy()
    contrast = rng.uniform(0.0, texture)
    return base + (other - base) * (contrast * _texture_field(rng, size))[..., None]


def _foreground_colour(rng: np.random.Generator, background: np.ndarray, colour: str) -> np.ndarray:
    """A random colour, resampled (class-independently) until it stands out from the background."""
    mean = background.reshape(-1, 3).mean(0)
    for _ in range(20):
        drawn = _random_colours(rng, 1, colour)[0]
        if np.linalg.norm(drawn - mean) >= 80:
            break
    return drawn


def _composite(image: np.ndarray, coverage: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return image * (1.0 - coverage) + colour * coverage


def render_image(rng: np.random.Generator, shape_id: int, size: int, nuisance: Nuisance = Nuisance()) -> np.ndarray:
    """One uint8 HWC image of shape ``shape_id``; every nuisance factor comes from ``rng``."""
    image = _background(rng, size, nuisance)
    if nuisance.distractor_p and rng.random() < nuisance.distractor_p:  # small blob, behind the shape
        blob = _coverage_mask(
            SHAPES["circle"], rng.uniform(0, size, 2), rng.uniform(0.05, 0.12) * size, 0.0, size
        )
        image = _composite(image, blob, rng.uniform(0, 255, 3).astype(np.float32))
    radius = rng.uniform(*nuisance.radius) * size / 2
    centre = size / 2 + rng.uniform(-nuisance.shift, nuisance.shift, 2) * size
    angle = math.radians(rng.uniform(-nuisance.rotation, nuisance.rotation))
    coverage = _coverage_mask(SHAPES[SHAPE_NAMES[shape_id]], centre, radius, angle, size)
    colour = _foreground_colour(rng, image, nuisance.colour)
    if nuisance.shading:
        colour = colour * (1.0 + rng.uniform(0.0, nuisance.shading) * (_texture_field(rng, size)[..., None] - 0.5))
    image = _composite(image, coverage, colour)
    if nuisance.noise:
        image += rng.normal(0.0, nuisance.noise, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- generation


def _check_args(train_per_class: int, val_per_class: int, image_size: int) -> None:
    if train_per_class < 1 or val_per_class < 1:
        raise ValueError(
            f"train_per_class and val_per_class must be >= 1, got {train_per_class}, {val_per_class}"
        )
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")


def _check_replaceable(root: Path) -> None:
    """Only ever replace a previous embedded dataset, never a user's unrelated folder."""
    if root.exists() and not (root / "dataset.json").is_file():
        raise UserInputError(
            f"{root} exists and is not an embedded dataset (no dataset.json): "
            "choose another output path or remove it yourself."
        )


def _write_split(
    out: Path,
    split: str,
    classes: list[str],
    per_class: int,
    seed: int,
    size: int,
    nuisance: Nuisance,
    report: Callable[[int], None],
) -> None:
    for class_id, name in enumerate(classes):
        folder = out / split / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            rng = np.random.default_rng([seed, SPLIT_IDS[split], class_id, index])
            Image.fromarray(render_image(rng, class_id, size, nuisance)).save(
                folder / f"{index:05d}.png", format="PNG"
            )
            report(1)


def _install(tmp: Path, root: Path) -> None:
    """Rename the finished ``tmp`` to ``root``, replacing an older dataset only now."""
    old = None
    if root.exists():
        old = root.parent / f".{root.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(root, old)
    try:
        os.rename(tmp, root)
    except BaseException:
        if old is not None:
            os.rename(old, root)
        raise
    if old is not None:
        shutil.rmtree(old)


def generate(
    root: Path,
    *,
    seed: int,
    num_classes: int = 10,
    train_per_class: int,
    val_per_class: int,
    image_size: int = 32,
    nuisance: dict | None = None,
    progress: bool = True,
) -> dict:
    """Write the dataset to ``root`` atomically and return its metadata (also in dataset.json)."""
    root = Path(root)
    classes = class_names(num_classes)
    nuisances = Nuisance.from_config(nuisance)
    _check_args(train_per_class, val_per_class, image_size)
    _check_replaceable(root)
    counts = {"train": train_per_class * num_classes, "val": val_per_class * num_classes}
    total, done, start = sum(counts.values()), 0, time.perf_counter()

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            report_progress(f"generate {root.name}", done, total)

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        for split, per_class in (("train", train_per_class), ("val", val_per_class)):
            _write_split(tmp, split, classes, per_class, seed, image_size, nuisances, report)
        meta = {
            "generator": "siamcollapse.data.embedded",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "num_classes": num_classes,
            "train_per_class": train_per_class,
            "val_per_class": val_per_class,
            "image_size": image_size,
            "nuisance": {**asdict(nuisances), "radius": list(nuisances.radius)},
            "supersample": SUPERSAMPLE,
            "classes": classes,
            "counts": counts,
        }
        write_json(tmp / "dataset.json", meta)  # last file: marks the dataset complete
        _install(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        print(
            f"generated {total} images into {root} in {time.perf_counter() - start:.1f}s",
            file=sys.stderr,
        )
    return meta
