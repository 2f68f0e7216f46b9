"""Throughput of batched tensor augmentation vs torchvision's per-image PIL pipeline.

Why: the batched path only pays off if two views of a training batch cost much
less than the model step (ResNet-18, 32 px, batch 64: ~0.25-0.35 s on 2 cores).
Run: PYTHONPATH=src .venv/bin/python benchmarks/augment_throughput.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from PIL import Image
from torchvision import transforms as T

from siamcollapse.data.augment import AugmentConfig, BatchAugment


def time_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> tuple[float, float]:
    """(median, best) wall time of fn in ms; best shows the cost on a quiet machine,
    median what a shared 2-core machine actually delivers."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times), min(times)


def pil_pipeline(size: int, cfg: AugmentConfig) -> T.Compose:
    """SimSiam/MoCo-v2 augmentation as torchvision composes it, per image."""
    return T.Compose([
        T.RandomResizedCrop(size, scale=cfg.crop_scale),
        T.RandomApply([T.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue)],
                      p=cfg.jitter_p),
        T.RandomGrayscale(cfg.grayscale_p),
        T.RandomApply([T.GaussianBlur(3, cfg.blur_sigma)], p=cfg.blur_p),
        T.RandomHorizontalFlip(cfg.flip_p),
        T.ToTensor(),
        T.Normalize(cfg.mean, cfg.std),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = AugmentConfig()
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8)
    pil_images = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]
    augment = BatchAugment(cfg, args.size)
    generator = torch.Generator().manual_seed(0)
    pipeline = pil_pipeline(args.size, cfg)

    def batched() -> None:
        with torch.no_grad():
            for _ in range(2):
                augment(images, generator)

    def per_image() -> None:
        for _ in range(2):
            torch.stack([pipeline(img) for img in pil_images])

    def stage(fn: Callable[[], object]) -> float:
        with torch.no_grad():
            return time_ms(fn, args.repeats)[0]

    crops = augment.crop_and_flip(images, generator)
    coloured = augment.colour(crops, generator)
    stages = {
        "crop_and_flip": stage(lambda: augment.crop_and_flip(images, generator)),
        "colour": stage(lambda: augment.colour(crops, generator)),
        "normalize": stage(lambda: augment.normalize(coloured)),
    }
    batched_ms = time_ms(batched, args.repeats)
    pil_ms = time_ms(per_image, max(3, args.repeats // 5))

    print(f"two views of {args.batch} x 3 x {args.size} x {args.size} uint8, "
          f"{torch.get_num_threads()} threads")
    print("                                  median      best  (ms/batch)")
    print("  BatchAugment (tensor, batched): {:8.2f}  {:8.2f}".format(*batched_ms))
    print("  torchvision PIL per image:      {:8.2f}  {:8.2f}".format(*pil_ms))
    speedup = [p / b for p, b in zip(pil_ms, batched_ms)]
    print("  speed-up:                       {:7.1f}x  {:7.1f}x".format(*speedup))
    print("  one view, median by stage: " + ", ".join(f"{k} {v:.2f} ms" for k, v in stages.items()))


if __name__ == "__main__":
    main()
