"""Supervised ceiling: the experiment's backbone trained with labels, at the pretraining budget.

Trains the config's default backbone (standard init) with cross-entropy for as many steps and
images per step as one pretraining run (epochs x steps_per_epoch x batch_size), on the config's
random crops and flips (no colour augmentation: labels need no invariance to be taught), SGD
(momentum 0.9, lr 0.1 cosine, weight decay 5e-4), and reports val top-1 (centre view) per seed
with the mean and sd. Beside the floors and the self-supervised runs in results/tables/runs.md
it says how much of the gap the labels would close. The dataset must exist (``make run`` makes
it). Usage:
    python benchmarks/supervised_ceiling.py [--config config.yaml] [--seeds 0 1 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from siamcollapse.config import load_experiment
from siamcollapse.data.augment import AugmentConfig, BatchAugment, eval_transform
from siamcollapse.data.sources import load_split
from siamcollapse.models.backbones import backbone_from_config

LR, WEIGHT_DECAY = 0.1, 5e-4


@torch.no_grad()
def _top1(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, size: int, aug: AugmentConfig) -> float:
    model.eval()
    logits = torch.cat([model(eval_transform(images[i:i + 500], size, aug.mean, aug.std))
                        for i in range(0, len(images), 500)])
    return 100.0 * float((logits.argmax(1) == labels).float().mean())


def train_one(config: dict, train, val, seed: int) -> float:
    hp, size = config["pretrain"], config["dataset"]["image_size"]
    torch.manual_seed(seed)
    backbone = backbone_from_config({**config["model"], "image_size": size}, zero_init_residual=False)
    num_classes = int(train.labels.max()) + 1
    model = nn.Sequential(backbone, nn.Linear(backbone.feature_dim, num_classes))
    aug = AugmentConfig(crop_scale=(config["augment"]["crop_min_scale"], 1.0), flip_p=0.5, jitter_p=0.0,
                        grayscale_p=0.0, blur_p=0.0)
    augment = BatchAugment(aug, size)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9, weight_decay=WEIGHT_DECAY)
    steps = hp["epochs"] * hp["steps_per_epoch"]
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(len(train.images), (hp["batch_size"],), generator=generator)
        for group in optimizer.param_groups:
            group["lr"] = LR * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = F.cross_entropy(model(augment(train.images[idx], generator)), train.labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return _top1(model, val.images, val.labels, size, aug)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_experiment([args.config])
    if not config["pretrain"]["steps_per_epoch"]:
        parser.error("the config must set pretrain.steps_per_epoch (the budget to match)")
    dataset = config["dataset"]
    train = load_split(dataset["source"], dataset["root"], "train", dataset["image_size"], progress=False)
    val = load_split(dataset["source"], dataset["root"], "val", dataset["image_size"], progress=False)
    hp = config["pretrain"]
    print(f"supervised {config['model']['arch']} (width {config['model'].get('width')}), "
          f"{hp['epochs'] * hp['steps_per_epoch']} steps of batch {hp['batch_size']}, {args.config}")
    scores = []
    for seed in args.seeds:
        tic = time.perf_counter()
        scores.append(train_one(config, train, val, seed))
        print(f"  seed {seed}: val top-1 {scores[-1]:.1f} %  ({time.perf_counter() - tic:.0f} s)", flush=True)
    spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
    print(f"  mean {statistics.mean(scores):.1f} ± {spread:.1f} % (n={len(scores)})")


if __name__ == "__main__":
    main()
