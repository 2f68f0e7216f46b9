"""The pretraining loop, launched through Accelerate.

``python -m siamcollapse pretrain`` on CPU or one GPU; ``accelerate launch`` on several GPUs
or nodes. The global batch size is preserved across process counts (each process takes its
share), bf16 autocast and channels_last are used on GPUs, a resumable state is saved after
every epoch, and each epoch logs loss, lr, images/s and the std of the L2-normalised
projections (about 1/sqrt(d) when healthy, 0 when collapsed).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..data.augment import BatchAugment
from ..data.loaders import InMemoryPairs, StreamingPairs, augment_config
from ..data.sources import ImageFolderStream, load_split, scan_labels
from ..data.subsets import read_subset
from ..errors import UserInputError
from ..io import save_torch, write_json, write_text
from ..methods import build_method
from ..methods.losses import normalized_std
from ..models.backbones import backbone_from_config
from ..plan import RANDOM_INIT, steps_per_epoch
from .checkpoint import (
    discard_resume_state,
    load_backbone,
    load_resume_state,
    save_backbone,
    save_resume_state,
    settings_hash,
)
from .optim import build_optimizer
from .schedules import apply_lr, learning_rate, scaled_lr
from .strategies import epoch_batches, epoch_seed, shard

LOG_COLUMNS = ["epoch", "steps", "loss", "lr", "images_per_s", "z_std", "z_std_healthy", "elapsed_s"]
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class RunFiles:
    """What a pretraining stage writes into its run directory."""

    run_dir: Path

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    @property
    def log(self) -> Path:
        return self.run_dir / "train_log.csv"

    @property
    def info(self) -> Path:
        return self.run_dir / "run.json"

    @property
    def settings(self) -> Path:
        return self.run_dir / "config.yaml"


def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _accelerator():
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    return Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no")


def _pair_source(settings: dict[str, Any], data_root: Path, device: torch.device):
    data = settings["data"]
    augment = BatchAugment(augment_config(settings["augment"]), data["image_size"])
    if data["in_memory"]:
        train = load_split(data["source"], data_root, "train", data["image_size"])
        return InMemoryPairs(train.images, augment, device)
    # Random crops are taken from the whole image, resized so its shorter side is 8/7 of the input
    # size (256 for 224, as ImageNet's evaluation resize), not from a centre crop.
    stream = ImageFolderStream(data_root, "train", data["image_size"], transform=_shorter_side(data["image_size"] * 8 // 7))
    return StreamingPairs(stream, augment, device, settings["pretrain"]["num_workers"], settings["pretrain"]["seed"])


def _shorter_side(size: int):
    from PIL import Image

    def resize(image: Image.Image) -> Image.Image:
        scale = size / min(image.size)
        return image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)

    return resize


@dataclass(frozen=True)
class Segment:
    """Where a pretraining job starts and stops, when it is one part of a longer run.

    A hybrid run continues another run's training state (``init_state``, which must carry the
    settings hash ``init_hash``); a run that hybrids branch off is trained up to a snapshot epoch
    (``stop_after_epoch``) whose state is written to ``state_out``.
    """

    init_state: Path | None = None
    init_hash: str | None = None
    stop_after_epoch: int | None = None
    state_out: Path | None = None


def pretrain(settings: dict[str, Any], data_root: Path, subset_path: Path | None, run_dir: Path,
             teacher_path: Path | None = None, segment: Segment = Segment()) -> RunFiles | None:
    """Train (or, for the random-init baseline, only initialise) one backbone; see module doc.

    Returns the run's files, or None for a segment that ends in a saved state.
    """
    files = RunFiles(Path(run_dir))
    files.run_dir.mkdir(parents=True, exist_ok=True)
    hp = settings["pretrain"]
    _seed_everything(hp["seed"])
    backbone = backbone_from_config(settings["model"])
    if settings["run"]["method"] == RANDOM_INIT:
        _write_log(files.log, [])
        return _finish(files, backbone, settings, epochs_trained=0)

    accelerator = _accelerator()
    device = accelerator.device
    num_train = len(scan_labels(settings["data"]["source"], data_root, "train")[0])
    indices = torch.from_numpy(read_subset(subset_path, num_train))
    pairs = _pair_source(settings, data_root, device)
    context = {"teacher": load_backbone(teacher_path)[0]} if teacher_path else {}
    model = build_method(hp["method"], backbone, hp, **context)
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model).to(memory_format=torch.channels_last)
    initial_lr = scaled_lr(hp["base_lr"], hp["batch_size"])
    optimizer = build_optimizer(model.param_groups(), hp, initial_lr)
    last_epoch = segment.stop_after_epoch or hp["epochs"]
    start_epoch, rows = _restore(model, optimizer, files, settings, segment, last_epoch, accelerator)
    model, optimizer = accelerator.prepare(model, optimizer)
    steps = steps_per_epoch(hp, num_train)
    accelerator.print(f"pretraining {settings['run']['run']} ({hp['method']}, {hp['strategy']}): {len(indices)} of "
                      f"{num_train} training images, epochs {start_epoch + 1}-{last_epoch} of {hp['epochs']} x {steps} "
                      f"steps, global batch {hp['batch_size']}, {accelerator.num_processes} process(es) on {device}")
    started = time.time() - (rows[-1]["elapsed_s"] if rows else 0.0)
    for epoch in range(start_epoch, last_epoch):
        row = _train_epoch(model, optimizer, pairs, indices, steps, epoch, initial_lr, hp, accelerator)
        row["elapsed_s"] = round(time.time() - started, 2)
        rows.append(row)
        accelerator.print(_format_row(row, hp["epochs"]), flush=True)
        if accelerator.is_main_process:
            if segment.state_out is None:  # a segment's rows travel in its state, not in the run's log
                _write_log(files.log, rows)
            save_resume_state(files.run_dir, _training_state(accelerator.unwrap_model(model), optimizer, rows, settings))
        accelerator.wait_for_everyone()
    method = accelerator.unwrap_model(model)
    if segment.state_out is not None:
        if accelerator.is_main_process:
            save_torch(segment.state_out, _training_state(method, optimizer, rows, settings))
            discard_resume_state(files.run_dir)
        return None
    if not rows:
        _write_log(files.log, rows)
    files = _finish(files, method.backbone, settings, hp["epochs"], method.checkpoint_extras())
    if accelerator.is_main_process:
        discard_resume_state(files.run_dir)
    return files


def _training_state(method, optimizer, rows: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": len(rows), "model": method.state_dict(), "optimizer": optimizer.state_dict(),
            "log_rows": rows, "settings_hash": settings_hash(settings)}


def _restore(model, optimizer, files: RunFiles, settings, segment: Segment, last_epoch: int, accelerator):
    """(first epoch, log rows so far): from this run's own resume state, else the segment's
    initial state, else from scratch."""
    state = load_resume_state(files.run_dir, settings_hash(settings))
    if state is not None and state["epoch"] > last_epoch:
        state = None  # a later segment's progress; this segment must stop earlier
    if state is None and segment.init_state is not None:
        state = torch.load(segment.init_state, map_location="cpu", weights_only=False)
        if state.get("settings_hash") != segment.init_hash:
            raise UserInputError(f"{segment.init_state} was trained with other settings than this run continues "
                                 "from; rerun the stage that writes it")
    if state is None:
        return 0, []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    accelerator.print(f"continuing {settings['run']['run']} after epoch {state['epoch']}")
    return state["epoch"], state["log_rows"]


def _train_epoch(model, optimizer, pairs, indices, steps, epoch, initial_lr, hp, accelerator) -> dict[str, Any]:
    model.train()
    method = accelerator.unwrap_model(model)
    batches = epoch_batches(hp, indices, steps, epoch)
    batches = torch.stack([shard(b, accelerator.process_index, accelerator.num_processes) for b in batches])
    generator = torch.Generator().manual_seed(epoch_seed(hp["seed"], epoch) + 7919 * accelerator.process_index)
    loss_sum = z_std_sum = 0.0
    tic = time.time()
    for step, (view1, view2) in enumerate(pairs.pairs(batches, generator)):
        lr = learning_rate(initial_lr, epoch, step, steps, hp["epochs"], hp["warmup_epochs"])
        apply_lr(optimizer, lr, initial_lr)
        if view1.device.type == "cuda":
            view1 = view1.contiguous(memory_format=torch.channels_last)
            view2 = view2.contiguous(memory_format=torch.channels_last)
        with accelerator.autocast():
            out = model(view1, view2)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(out.loss)
        optimizer.step()
        method.on_step_end((epoch * steps + step + 1) / (hp["epochs"] * steps))
        loss_sum += out.loss.detach()
        z_std_sum += normalized_std(out.projections)
        if hp["log_every"] and (step + 1) % hp["log_every"] == 0:
            accelerator.print(f"  epoch {epoch + 1} step {step + 1}/{steps} loss {float(loss_sum) / (step + 1):.4f} "
                              f"lr {lr:.4g}", flush=True)
    seconds = time.time() - tic
    dim = out.projections.shape[-1]
    return {
        "epoch": epoch + 1, "steps": steps,
        "loss": round(float(accelerator.reduce(loss_sum, "mean")) / steps, 5),
        "lr": round(lr, 6),
        "images_per_s": round(steps * hp["batch_size"] / seconds, 1),
        "z_std": round(float(z_std_sum) / steps, 5), "z_std_healthy": round(dim ** -0.5, 5),
    }


def _format_row(row: dict[str, Any], epochs: int) -> str:
    return (f"epoch {row['epoch']}/{epochs}  loss {row['loss']:+.4f}  lr {row['lr']:.4g}  "
            f"{row['images_per_s']:.0f} images/s  z_std {row['z_std']:.4f} (healthy ~{row['z_std_healthy']:.4f})  "
            f"{row['elapsed_s']:.0f}s")


def _finish(files: RunFiles, backbone: torch.nn.Module, settings: dict[str, Any], epochs_trained: int,
            extras: dict[str, Any] | None = None) -> RunFiles:
    write_text(files.settings, yaml.safe_dump(settings, sort_keys=False))
    save_backbone(files.checkpoint, backbone, settings["model"], settings["run"], epochs_trained, extras)
    write_json(files.info, {**settings["run"], "epochs_trained": epochs_trained})
    return files
