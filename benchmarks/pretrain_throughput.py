"""Pretraining throughput: siamcollapse's stage vs a plain reference-style SimSiam loop.

Both train the same SimSiam ResNet-18 (batch 64, 32-px images of the embedded dataset, fp32)
in one process tree on this machine:

* reference — the SimSiam repository's recipe: torchvision ImageFolder, the MoCo-v2 PIL
  transforms applied per image in 2 DataLoader workers, two crops per image;
* siamcollapse — the real ``pretrain`` stage (uint8 images in memory, batched augmentation);
* model only — forward/backward on random tensors: the ceiling for any data pipeline.

Prints images/s of each and the ratios. Usage:
    python benchmarks/pretrain_throughput.py [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from siamcollapse import plan
from siamcollapse.config import load_experiment
from siamcollapse.data.catalog import scan_labels
from siamcollapse.data.embedded import generate
from siamcollapse.data.subsets import write_subset
from siamcollapse.methods import build_method
from siamcollapse.models.backbones import build_backbone
from siamcollapse.training.loop import pretrain

SIZE = 32


@dataclass(frozen=True)
class Shape:
    """The measured network and batch (the defaults are the README's; the test runs a tiny one)."""

    batch: int = 64
    width: int = 64
HEADS = {"proj_dim": 2048, "pred_dim": 512, "fix_pred_lr": True}


class TwoCrops:
    def __init__(self, transform):
        self.transform = transform

    def __call__(self, image):
        return self.transform(image), self.transform(image)


def reference_transform() -> transforms.Compose:
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    return transforms.Compose([
        transforms.RandomResizedCrop(SIZE, scale=(0.2, 1.0)),
        transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
        transforms.RandomApply([transforms.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        normalize,
    ])


def simsiam_model(shape: Shape) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_method("simsiam", build_backbone("resnet18", shape.width, "imagenet"), HEADS)


def timed_steps(batches, model, optimizer, warmup: int, steps: int, batch: int) -> float:
    """images/s over ``steps`` steps after ``warmup`` untimed ones."""
    model.train()
    for i, (view1, view2) in enumerate(batches):
        if i == warmup:
            tic = time.perf_counter()
        out = model(view1, view2)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if i + 1 == warmup + steps:
            return steps * batch / (time.perf_counter() - tic)
    raise RuntimeError("not enough batches")


def reference(root: Path, steps: int, shape: Shape) -> float:
    data = datasets.ImageFolder(root / "train", TwoCrops(reference_transform()))
    loader = DataLoader(data, batch_size=shape.batch, shuffle=True, num_workers=2, drop_last=True,
                        persistent_workers=True)
    model = simsiam_model(shape)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0125, momentum=0.9, weight_decay=1e-4)

    def batches():
        while True:
            for (view1, view2), _ in loader:
                yield view1, view2

    return timed_steps(batches(), model, optimizer, warmup=5, steps=steps, batch=shape.batch)


def model_only(steps: int, shape: Shape) -> float:
    model = simsiam_model(shape)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0125, momentum=0.9)
    views = (torch.randn(shape.batch, 3, SIZE, SIZE), torch.randn(shape.batch, 3, SIZE, SIZE))
    return timed_steps(iter(lambda: views, None), model, optimizer, warmup=3, steps=steps, batch=shape.batch)


def stage_settings(root: Path, work: Path, steps: int, shape: Shape) -> dict:
    """The pretrain stage's settings for the benchmark's run, resolved by the stages' own config
    and plan code (so they cannot drift from what the stage reads)."""
    experiment = {
        "output_dir": str(work / "results"),
        "dataset": {"source": "embedded", "root": str(root), "image_size": SIZE, "in_memory": True},
        "model": {"arch": "resnet18", "width": shape.width, "stem": "imagenet"},
        # no collapse tracking: images/s counts the training steps only, and the benchmark needs no more
        "pretrain": {"epochs": 2, "steps_per_epoch": steps, "batch_size": shape.batch, "num_workers": 0, "track_every": 0},
        "methods": {"simsiam": {key: HEADS[key] for key in ("proj_dim", "pred_dim", "fix_pred_lr")}},
        "runs": {"bench": {"fractions": [1.0]}},
        "random_init_baseline": False,
    }
    config_file = work / "bench.yaml"
    config_file.write_text(yaml.safe_dump(experiment))
    config = load_experiment([config_file])
    return plan.pretrain_settings(config, plan.find_run(config, "bench-100pct"))


def stage(root: Path, work: Path, steps: int, shape: Shape) -> float:
    """The real pretraining stage; the second epoch's images/s from its own log."""
    labels, _ = scan_labels("embedded", root, "train")
    write_subset(work / "subset.json", labels, 1.0, 0, True)
    files = pretrain(stage_settings(root, work, steps, shape), root, work / "subset.json", work / "run")
    with open(files.train_log) as handle:
        return float(list(csv.DictReader(handle))[-1]["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    parser.add_argument("--images-per-class", type=int, default=200, help="training images per class generated")
    parser.add_argument("--batch", type=int, default=Shape.batch, help="batch size (default: %(default)s)")
    parser.add_argument("--width", type=int, default=Shape.width, help="ResNet-18 width (default: %(default)s)")
    args = parser.parse_args()
    shape = Shape(args.batch, args.width)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "embedded"
        generate(root, seed=0, train_per_class=args.images_per_class, val_per_class=1, image_size=SIZE, progress=False)
        results = {
            "reference (PIL, 2 workers)": reference(root, args.steps, shape),
            "siamcollapse pretrain stage": stage(root, work, args.steps, shape),
            "model only (random tensors)": model_only(args.steps, shape),
        }
    base = results["reference (PIL, 2 workers)"]
    print(f"SimSiam ResNet-18 (width {shape.width}), batch {shape.batch}, {SIZE} px, fp32, {args.threads} threads, "
          f"{args.steps} timed steps")
    for name, images_per_s in results.items():
        print(f"  {name:<30} {images_per_s:8.1f} images/s   {images_per_s / base:5.2f}x reference")


if __name__ == "__main__":
    main()
