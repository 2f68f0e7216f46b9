"""GPU pretraining throughput: a reference-style SimSiam loop, the pretrain stage as shipped, and
the model's own ceiling, on one device.

For each shape, in this one process (and the reference loop's DataLoader workers):

(a) reference — the SimSiam repository's loop: torchvision ImageFolder, the MoCo-v2 PIL
    transforms per image in DataLoader workers (pinned memory), fp32, no compile;
(b) siamcollapse — the real ``pretrain`` stage as shipped: uint8 images resident on the
    device, batched augmentation there, bf16 autocast, channels_last and torch.compile on CUDA
    (pretrain.compile: auto); its second epoch's images/s from its own log;
(c) ceiling — the stage's own step (method, optimiser, precision, memory format, compile) on
    random tensors already on the device.

Prints images/s, each one's ratio to (a), (b)/(c), and the peak device memory. The shapes are
SimSiam ResNet-18 at 32 px (the CIFAR stem, batch 512) and ResNet-50 at 224 px (batch 256), on
the embedded dataset generated at that size (synthetic: no download). It runs on a CPU too,
at the sizes given (the test runs it tiny). Usage:

    python benchmarks/gpu_throughput.py [--shape resnet18-32 --shape resnet50-224] [--steps 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from _throughput import Shape, ceiling, reference, stage, stage_settings

from siamcollapse.data.embedded import generate

SHAPES = {
    "resnet18-32": Shape("resnet18", 32, 512, 64, "small"),
    "resnet50-224": Shape("resnet50", 224, 256, 64, "imagenet"),
}
NAMES = ("reference", "siamcollapse", "ceiling")


def measured(device: torch.device, run: Callable[[], float]) -> tuple[float, float | None]:
    """(images/s of ``run``, its peak device memory in GiB; None on a CPU)."""
    if device.type != "cuda":
        return run(), None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    images_per_s = run()
    return images_per_s, torch.cuda.max_memory_allocated(device) / 2**30


def benchmark(shape: Shape, args: argparse.Namespace, device: torch.device) -> dict[str, tuple[float, float | None]]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "embedded"
        generate(root, seed=0, train_per_class=max(1, args.images // 10), val_per_class=1, image_size=shape.size,
                 progress=False)
        settings = stage_settings(root, work, args.steps, shape)  # checked before anything runs
        return {
            "reference": measured(device, lambda: reference(root, args.steps, shape, device, args.workers)),
            "siamcollapse": measured(device, lambda: stage(settings, root, work)),
            "ceiling": measured(device, lambda: ceiling(settings, args.steps, device)),
        }


def report(name: str, shape: Shape, results: dict[str, tuple[float, float | None]], args, device) -> str:
    base = results["reference"][0]
    header = (f"SimSiam {shape.arch} (width {shape.width}, {shape.stem} stem), {shape.size} px, batch {shape.batch}, "
              f"{args.steps} timed steps, on {device_name(device)} [{name}]")
    lines = [header]
    for key in NAMES:
        images_per_s, peak = results[key]
        memory = f"   peak {peak:6.2f} GiB" if peak is not None else ""
        lines.append(f"  ({'abc'[NAMES.index(key)]}) {key:<13} {images_per_s:10.1f} images/s   "
                     f"{images_per_s / base:6.2f}x reference{memory}")
    lines.append(f"  (b)/(c) {results['siamcollapse'][0] / results['ceiling'][0]:.2f}")
    return "\n".join(lines)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES),
                        help="shape to measure (repeat; default: all)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per measurement (default: %(default)s)")
    parser.add_argument("--images", type=int, default=5000, help="training images generated (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1),
                        help="DataLoader workers of the reference loop (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=None, help="batch size instead of the shape's")
    parser.add_argument("--width", type=int, default=None, help="ResNet width instead of 64")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for name in args.shape or list(SHAPES):
        shape = SHAPES[name]
        shape = replace(shape, batch=args.batch or shape.batch, width=args.width or shape.width)
        print(report(name, shape, benchmark(shape, args, device), args, device), flush=True)


if __name__ == "__main__":
    main()
