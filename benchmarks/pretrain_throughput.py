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
import tempfile
from pathlib import Path

import torch
from _throughput import Shape, ceiling, reference, stage, stage_settings

from siamcollapse.data.embedded import generate

SIZE = 32
CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training process")
    parser.add_argument("--images-per-class", type=int, default=200, help="training images per class generated")
    parser.add_argument("--batch", type=int, default=Shape.batch, help="batch size (default: %(default)s)")
    parser.add_argument("--width", type=int, default=Shape.width, help="ResNet-18 width (default: %(default)s)")
    args = parser.parse_args()
    shape = Shape(size=SIZE, batch=args.batch, width=args.width)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "embedded"
        generate(root, seed=0, train_per_class=args.images_per_class, val_per_class=1, image_size=SIZE, progress=False)
        settings = stage_settings(root, work, args.steps, shape)
        results = {
            "reference (PIL, 2 workers)": reference(root, args.steps, shape, CPU, workers=2),
            "siamcollapse pretrain stage": stage(settings, root, work),
            "model only (random tensors)": ceiling(settings, args.steps, CPU),
        }
    base = results["reference (PIL, 2 workers)"]
    print(f"SimSiam ResNet-18 (width {shape.width}), batch {shape.batch}, {SIZE} px, fp32, {args.threads} threads, "
          f"{args.steps} timed steps")
    for name, images_per_s in results.items():
        print(f"  {name:<30} {images_per_s:8.1f} images/s   {images_per_s / base:5.2f}x reference")


if __name__ == "__main__":
    main()
