"""What the throughput benchmarks share: the reference-style SimSiam loop (the SimSiam
repository's recipe), the real pretrain stage run on a generated dataset, and the timing of
training steps. Not a script: pretrain_throughput.py (CPU) and gpu_throughput.py import it."""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from siamcollapse import plan
from siamcollapse.config import load_experiment
from siamcollapse.data.catalog import scan_labels
from siamcollapse.data.subsets import write_subset
from siamcollapse.methods import build_method
from siamcollapse.models.backbones import backbone_from_config
from siamcollapse.optim.optimizers import build_optimizer
from siamcollapse.optim.schedules import scaled_lr
from siamcollapse.training.loop import COMPILE_BACKEND, compiles, pretrain

# SimSiam's heads at full size; the reference loop's optimiser is the SimSiam repository's.
HEADS = {"proj_dim": 2048, "pred_dim": 512, "fix_pred_lr": True}
REFERENCE_LR, REFERENCE_MOMENTUM, REFERENCE_WEIGHT_DECAY = 0.05, 0.9, 1e-4  # lr x batch / 256


@dataclass(frozen=True)
class Shape:
    """A measured network, image size and batch."""

    arch: str = "resnet18"
    size: int = 32
    batch: int = 64
    width: int = 64
    stem: str = "imagenet"

    @property
    def model(self) -> dict[str, Any]:
        return {"arch": self.arch, "width": self.width, "stem": self.stem}


class TwoCrops:
    def __init__(self, transform: Callable) -> None:
        self.transform = transform

    def __call__(self, image):
        return self.transform(image), self.transform(image)


def reference_transform(size: int) -> transforms.Compose:
    """The MoCo-v2 augmentation of the SimSiam repository, per PIL image."""
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    return transforms.Compose([
        transforms.RandomResizedCrop(size, scale=(0.2, 1.0)),
        transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
        transforms.RandomApply([transforms.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        normalize,
    ])


def simsiam_model(shape: Shape) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_method("simsiam", backbone_from_config(shape.model), HEADS)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(batches: Iterator, step: Callable[[torch.Tensor, torch.Tensor], None], warmup: int, steps: int,
                batch: int, device: torch.device) -> float:
    """images/s of ``step`` over ``steps`` batches after ``warmup`` untimed ones (a compile's
    first steps among them), the device's queue drained at both ends."""
    for i, (view1, view2) in enumerate(batches):
        if i == warmup:
            _synchronize(device)
            tic = time.perf_counter()
        step(view1, view2)
        if i + 1 == warmup + steps:
            _synchronize(device)
            return steps * batch / (time.perf_counter() - tic)
    raise RuntimeError("not enough batches")


def sgd_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """A plain fp32 training step of a method on two views."""

    def step(view1: torch.Tensor, view2: torch.Tensor) -> None:
        out = model(view1, view2)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    return step


def reference(root: Path, steps: int, shape: Shape, device: torch.device, workers: int, warmup: int = 5) -> float:
    """images/s of the SimSiam repository's loop: ImageFolder, per-image PIL transforms in
    DataLoader workers (pinned memory on a GPU), fp32, no compile, no channels_last."""
    data = datasets.ImageFolder(root / "train", TwoCrops(reference_transform(shape.size)))
    loader = DataLoader(data, batch_size=shape.batch, shuffle=True, num_workers=workers, drop_last=True,
                        persistent_workers=workers > 0, pin_memory=device.type == "cuda")
    model = simsiam_model(shape).to(device)
    lr = REFERENCE_LR * shape.batch / 256
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=REFERENCE_MOMENTUM,
                                weight_decay=REFERENCE_WEIGHT_DECAY)

    def batches():
        while True:
            for (view1, view2), _ in loader:
                yield view1.to(device, non_blocking=True), view2.to(device, non_blocking=True)

    model.train()
    return timed_steps(batches(), sgd_step(model, optimizer), warmup, steps, shape.batch, device)


def stage_settings(root: Path, work: Path, steps: int, shape: Shape) -> dict[str, Any]:
    """The pretrain stage's settings for the benchmark's run, resolved by the stages' own config
    and plan code (so they cannot drift from what the stage reads)."""
    experiment = {
        "output_dir": str(work / "results"),
        "dataset": {"source": "embedded", "root": str(root), "image_size": shape.size, "in_memory": True},
        "model": shape.model,
        # no collapse tracking: images/s counts the training steps only, and the benchmark needs no more
        "pretrain": {"epochs": 2, "steps_per_epoch": steps, "batch_size": shape.batch, "num_workers": 0,
                     "track_every": 0},
        "methods": {"simsiam": HEADS},
        "runs": {"bench": {"fractions": [1.0]}},
        "random_init_baseline": False,
    }
    config_file = work / "bench.yaml"
    config_file.write_text(yaml.safe_dump(experiment))
    config = load_experiment([config_file])
    return plan.pretrain_settings(config, plan.find_run(config, "bench-100pct"))


def stage(settings: dict[str, Any], root: Path, work: Path) -> float:
    """The real pretraining stage as shipped, with ``stage_settings``; its second epoch's
    images/s from its own log (the first holds any compile)."""
    labels, _ = scan_labels("embedded", root, "train")
    write_subset(work / "subset.json", labels, 1.0, 0, True)
    files = pretrain(settings, root, work / "subset.json", work / "run")
    with open(files.train_log) as handle:
        return float(list(csv.DictReader(handle))[-1]["images_per_s"])


def ceiling(settings: dict[str, Any], steps: int, device: torch.device, warmup: int = 5) -> float:
    """images/s of the stage's own step (its method, optimiser, precision, memory format and
    compile) on random tensors already on the device: the ceiling of any data pipeline."""
    hp, size = settings["pretrain"], settings["data"]["image_size"]
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    model = build_method(hp["method"], backbone_from_config(settings["model"]), hp).to(device)
    views = [torch.randn(hp["batch_size"], 3, size, size, device=device) for _ in range(2)]
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        views = [view.contiguous(memory_format=torch.channels_last) for view in views]
    optimizer = build_optimizer(model.param_groups(), hp, scaled_lr(hp["base_lr"], hp["batch_size"]))
    forward = torch.compile(model, backend=COMPILE_BACKEND) if compiles(hp["compile"], cuda) else model

    def step(view1: torch.Tensor, view2: torch.Tensor) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext():
            out = forward(view1, view2)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        model.on_step_end(0.5)

    model.train()
    return timed_steps(iter(lambda: views, None), step, warmup, steps, hp["batch_size"], device)
