"""The pretraining loop, launched through Accelerate.

``siamcollapse pretrain`` on CPU or one GPU; ``siamcollapse launch`` (``accelerate launch``)
on several GPUs or nodes. The global batch, its augmentations and the lr are the same for any
number of processes (each takes its share of the batch; batch norm is synchronised), so a
multi-GPU run computes what one process would. bf16 autocast and channels_last are used on
GPUs. A resumable state is saved after every epoch and, on SIGTERM, after the current step.
Each epoch logs loss, lr, images/s and the std of the L2-normalised projections (about
1/sqrt(d) when healthy, 0 when collapsed).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..config import steps_per_epoch
from ..data.augment import BatchAugment, BatchShare
from ..data.catalog import scan_labels
from ..data.loaders import InMemoryPairs, StreamingPairs, augment_config
from ..data.sources import ImageFolderStream, decode_images, load_split, shorter_side_resize, train_resize_side
from ..data.subsets import fixed_sample, read_subset
from ..distributed import all_reduce_max, sync_batch_norm
from ..errors import TrainingDiverged, TrainingInterrupted, UserInputError
from ..evaluation.collapse_monitor import CollapseMonitor
from ..evaluation.spectrum import NonFiniteFeatures
from ..io import load_torch, save_torch, write_json, write_text
from ..layout import RunDir
from ..methods import build_method
from ..methods.losses import normalized_std
from ..metrics import SPECTRUM_METRICS
from ..models.backbones import backbone_from_config
from ..names import RANDOM_INIT
from ..optim.optimizers import build_optimizer
from ..optim.schedules import apply_scheduled_lr, scaled_lr, scheduled_lr
from ..progress import duration, eta
from .checkpoint import (
    discard_resume_state,
    load_backbone,
    load_resume_state,
    save_backbone,
    save_resume_state,
    settings_hash,
)
from .preemption import StopSignal
from .strategies import epoch_batches, shard, step_seeds
from .tracking import TrackerLog, Tracking

# Per epoch; the spectrum metrics (and track_s, the seconds spent measuring them) only on tracked epochs.
CHECK_EVERY = 20  # steps between checks for a non-finite loss or a SIGTERM on an accelerator (each one syncs)
LOG_COLUMNS = ["epoch", "steps", "loss", "lr", "images_per_s", "z_std", "z_std_healthy", "elapsed_s",
               *SPECTRUM_METRICS, "track_s"]

def _write_log(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=LOG_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


COMPILE_BACKEND = "inductor"  # torch.compile's backend when pretrain.compile is on


def compiles(setting: str | bool, cuda: bool) -> bool:
    """Whether pretrain.compile ``setting`` compiles the training step ('auto': on CUDA only)."""
    return cuda if setting == "auto" else bool(setting)


def _accelerator(log_with: list[Any] | None = None):
    from accelerate import Accelerator

    cuda = torch.cuda.is_available()
    # Never Accelerate's own compile (an Accelerate config's dynamo setting): pretrain.compile
    # decides, per run, where Accelerate's choice would hold for every later run of the process.
    return Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no", log_with=log_with or None,
                       dynamo_backend="no")


def _unwrapped(accelerator, model):
    """The method itself: without its DDP wrapper and without torch.compile's (whose state dict
    would prefix every key)."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


def _pair_source(settings: dict[str, Any], data_root: Path, device: torch.device, share: BatchShare):
    data = settings["data"]
    augment = BatchAugment(augment_config(settings["augment"]), data["image_size"])
    if data["in_memory"]:
        train = load_split(data["source"], data_root, "train", data["image_size"])
        return InMemoryPairs(train.images, augment, device, share)
    stream = ImageFolderStream(data_root, "train", data["image_size"],
                               transform=shorter_side_resize(train_resize_side(data["image_size"])))
    return StreamingPairs(stream, augment, device, settings["pretrain"]["num_workers"], share)


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


@dataclass
class EpochProgress:
    """How far the epoch with 0-based index ``epoch`` got: steps done and their running sums
    (averaged over processes when saved, so a resumed epoch logs what an unbroken one would)."""

    epoch: int
    step: int = 0
    loss_sum: float = 0.0
    z_std_sum: float = 0.0
    seconds: float = 0.0
    projection_dim: int = 0


def pretrain(settings: dict[str, Any], data_root: Path, subset_path: Path | None, run_dir: Path,
             teacher_path: Path | None = None, segment: Segment = Segment(),
             tracking: Tracking | None = None) -> RunDir | None:
    """Train (or, for the random-init baseline, only initialise) one backbone; see module doc.
    ``tracking``: the experiment trackers to log to as well (training.tracking).

    Returns the run's files, or None for a segment that ends in a saved state.
    """
    files = RunDir(Path(run_dir))
    files.path.mkdir(parents=True, exist_ok=True)
    hp = settings["pretrain"]
    _seed_everything(hp["seed"])
    random_init = settings["run"]["method"] == RANDOM_INIT
    # A floor is the network before training: torchvision's standard init, not SimSiam's zero-init
    # residual, which silences most residual branches of an untrained ResNet.
    backbone = backbone_from_config(settings["model"], zero_init_residual=not random_init and hp["zero_init_residual"])
    if random_init:
        _write_log(files.train_log, [])
        return _finish(files, backbone, settings, epochs_trained=0)

    run_name = settings["run"]["run"]
    last_epoch = segment.stop_after_epoch or hp["epochs"]
    state = _resume_state(files, settings, segment, last_epoch)
    tracker_ids = _tracker_ids(state, run_name) if tracking else None
    accelerator = _accelerator(tracking.trackers(run_name, tracker_ids) if tracking else None)
    device = accelerator.device
    if hp["batch_size"] % accelerator.num_processes:
        raise UserInputError(f"pretrain.batch_size {hp['batch_size']} must be divisible by the "
                             f"{accelerator.num_processes} training processes")
    num_train = len(scan_labels(settings["data"]["source"], data_root, "train")[0])
    indices = torch.from_numpy(read_subset(subset_path, num_train))
    pairs = _pair_source(settings, data_root, device, BatchShare(accelerator.process_index, accelerator.num_processes))
    monitor = _collapse_monitor(settings, data_root, num_train, device, pairs)
    context = {"teacher": load_backbone(teacher_path)[0]} if teacher_path else {}
    model = sync_batch_norm(build_method(hp["method"], backbone, hp, **context), device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    initial_lr = scaled_lr(hp["base_lr"], hp["batch_size"])
    optimizer = build_optimizer(model.param_groups(), hp, initial_lr)
    rows, progress = _restore(model, optimizer, state, run_name, accelerator)
    model, optimizer = accelerator.prepare(model, optimizer)
    compiled = compiles(hp["compile"], device.type == "cuda")
    if compiled:  # the whole step's forward, losses included; the DDP wrapper inside, as torch advises
        model = torch.compile(model, backend=COMPILE_BACKEND)
    steps = steps_per_epoch(hp, num_train)
    log = None
    if tracking:
        tracking.start(accelerator, run_name, settings, tracker_ids)
        log = TrackerLog(accelerator, steps)
        tracker_ids = Tracking.run_ids(accelerator) if accelerator.is_main_process else {}
    keep = {"tracker_run": run_name, "tracker_ids": tracker_ids or {}}  # saved with every state
    accelerator.print(f"pretraining {run_name} ({hp['method']}, {hp['strategy']}): {len(indices)} of "
                      f"{num_train} training images, epochs {len(rows) + 1}-{last_epoch} of {hp['epochs']} x {steps} "
                      f"steps, global batch {hp['batch_size']}, {accelerator.num_processes} process(es) on {device}"
                      + (f", compiled ({COMPILE_BACKEND})" if compiled else ""))
    started = time.time() - (rows[-1]["elapsed_s"] if rows else 0.0)
    try:
        with StopSignal() as stop:
            for epoch in range(len(rows), last_epoch):
                progress = progress if progress is not None else EpochProgress(epoch)
                _train_epoch(model, optimizer, pairs, indices, steps, progress, initial_lr, hp, accelerator, stop,
                             run_name, log)
                if progress.step < steps:
                    _save_interrupted(accelerator, model, optimizer, rows, settings, files, progress, keep, log)
                tracked = _track(monitor, _unwrapped(accelerator, model), epoch, hp, run_name)
                rows.append({**_epoch_row(progress, steps, initial_lr, hp, accelerator, started), **tracked})
                progress = None
                if accelerator.is_main_process:
                    if segment.state_out is None:  # a segment's rows travel in its state, not in the run's log
                        _write_log(files.train_log, rows)
                    save_resume_state(files.path, _training_state(_unwrapped(accelerator, model), optimizer, rows,
                                                                     settings, keep))
                accelerator.wait_for_everyone()
                if log:  # logged once the state they belong to is saved (training.tracking)
                    log.flush()
                    log.epoch(rows[-1])
                accelerator.print(_format_row(rows[-1], hp["epochs"]), flush=True)  # printed once its state is saved
    finally:
        if log:
            accelerator.end_training()
    method = _unwrapped(accelerator, model)
    if segment.state_out is not None:
        if accelerator.is_main_process:
            save_torch(segment.state_out, _training_state(method, optimizer, rows, settings, keep))
            discard_resume_state(files.path)
        return None
    if not rows:
        _write_log(files.train_log, rows)
    files = _finish(files, method.backbone, settings, hp["epochs"], method.checkpoint_extras())
    if accelerator.is_main_process:
        discard_resume_state(files.path)
    return files


def _collapse_monitor(settings: dict[str, Any], data_root: Path, num_train: int, device: torch.device,
                      pairs: InMemoryPairs | StreamingPairs) -> CollapseMonitor | None:
    """The tracker of the collapse metrics during training (None when ``track_every`` is 0)."""
    hp, data = settings["pretrain"], settings["data"]
    if not hp["track_every"]:
        return None
    sample = fixed_sample(num_train, hp["track_images"])
    # In-memory pairs already hold the decoded images (at the evaluation size); others are read.
    images = pairs.images[torch.from_numpy(sample).to(pairs.images.device)] if isinstance(pairs, InMemoryPairs) \
        else decode_images(data_root, "train", data["image_size"], sample)
    return CollapseMonitor(images, data["image_size"], device)


def _track(monitor: CollapseMonitor | None, method, epoch: int, hp: dict[str, Any], run_name: str) -> dict[str, float]:
    """The collapse metrics of the backbone after 0-based ``epoch``, on epochs that are tracked
    (every ``track_every``-th and the last); {} on the others."""
    done = epoch + 1
    if monitor is None or (done % hp["track_every"] and done != hp["epochs"]):
        return {}
    before = monitor.seconds
    try:
        measured = monitor.measure(method.backbone)
    except NonFiniteFeatures as err:  # the loss can stay finite (SimSiam's is a bounded cosine) while weights blow up
        raise TrainingDiverged(
            f"run '{run_name}': the backbone's features became non-finite by the end of epoch {done} ({err}, "
            f"tracked on {len(monitor.images)} fixed training images); training stopped and no checkpoint was "
            f"written. A too-large learning rate is the usual cause: lower base_lr (now {hp['base_lr']:g})") from err
    values = {name: float(f"{value:.6g}") for name, value in measured.items()}
    return {**values, "track_s": round(monitor.seconds - before, 3)}


def _training_state(method, optimizer, rows: list[dict[str, Any]], settings: dict[str, Any], keep: dict[str, Any],
                    progress: EpochProgress | None = None) -> dict[str, Any]:
    """``keep``: what else travels with the state (the run's tracker runs)."""
    return {"epoch": len(rows), "model": method.state_dict(), "optimizer": optimizer.state_dict(),
            "log_rows": rows, "settings_hash": settings_hash(settings),
            "epoch_progress": asdict(progress) if progress is not None else None, **keep}


def _save_interrupted(accelerator, model, optimizer, rows, settings, files: RunDir, progress: EpochProgress,
                      keep: dict[str, Any], log: TrackerLog | None):
    """Save the state mid-epoch (after SIGTERM), log its steps and raise TrainingInterrupted."""
    sums = torch.tensor([progress.loss_sum, progress.z_std_sum], dtype=torch.float64, device=accelerator.device)
    progress.loss_sum, progress.z_std_sum = accelerator.reduce(sums, "mean").tolist()
    if accelerator.is_main_process:
        save_resume_state(files.path, _training_state(_unwrapped(accelerator, model), optimizer, rows, settings,
                                                         keep, progress))
    accelerator.wait_for_everyone()
    if log:
        log.flush()
    raise TrainingInterrupted(f"stopped by SIGTERM at epoch {progress.epoch + 1} step {progress.step}; the state is "
                              f"saved in {files.path}: rerun the same command to resume")


def _resume_state(files: RunDir, settings, segment: Segment, last_epoch: int) -> dict[str, Any] | None:
    """The training state to continue: this run's own resume state, else the segment's initial
    state, else None (from scratch)."""
    state = load_resume_state(files.path, settings_hash(settings))
    if state is not None and _epochs_begun(state) > last_epoch:
        state = None  # a later segment's progress; this segment must stop earlier
    if state is None and segment.init_state is not None:
        state = load_torch(segment.init_state)
        if state.get("settings_hash") != segment.init_hash:
            raise UserInputError(f"{segment.init_state} was trained with other settings than this run continues "
                                 "from; rerun the stage that writes it")
    return state


def _tracker_ids(state: dict[str, Any] | None, run_name: str) -> dict[str, str] | None:
    """The tracker runs ``state`` continues, if it is this run's (a hybrid run's initial state is
    another run's: the hybrid starts tracker runs of its own)."""
    if state is None or state.get("tracker_run") != run_name:
        return None
    return state["tracker_ids"]


def _restore(model, optimizer, state: dict[str, Any] | None, run_name: str, accelerator):
    """(log rows of the epochs done, progress of an interrupted epoch or None) of ``state``,
    whose weights and optimizer state it loads."""
    if state is None:
        return [], None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    progress = EpochProgress(**state["epoch_progress"]) if state.get("epoch_progress") else None
    where = f"epoch {progress.epoch + 1} step {progress.step}" if progress else f"epoch {state['epoch']}"
    accelerator.print(f"continuing {run_name} after {where}")
    return state["log_rows"], progress


def _epochs_begun(state: dict[str, Any]) -> int:
    return state["epoch"] + (1 if state.get("epoch_progress") else 0)


def _stop_if_diverged(first_bad: torch.Tensor, epoch: int, steps: int, initial_lr: float, hp: dict[str, Any],
                      run_name: str) -> None:
    """Raise TrainingDiverged if any process saw a non-finite loss (a collective when distributed)."""
    step = int(all_reduce_max(first_bad))
    if step < 0:
        return
    lr = scheduled_lr(initial_lr, epoch, step, steps, hp)
    raise TrainingDiverged(
        f"run '{run_name}': the loss became non-finite at epoch {epoch + 1} step {step + 1} (lr {lr:.4g}); training "
        f"stopped and no checkpoint was written. A too-large learning rate is the usual cause: lower base_lr "
        f"(now {hp['base_lr']:g}; methods.{hp['method']}.base_lr, or the run group's pretrain.base_lr) or warm it "
        "up (warmup_epochs)")


def _train_epoch(model, optimizer, pairs, indices, steps, progress: EpochProgress, initial_lr, hp, accelerator,
                 stop: StopSignal, run_name: str, log: TrackerLog | None) -> None:
    """Train the steps of ``progress.epoch`` from ``progress.step`` on, updating ``progress``;
    returns early (``progress.step < steps``) when SIGTERM arrived, raises TrainingDiverged when
    the loss stops being finite."""
    model.train()
    method = _unwrapped(accelerator, model)
    epoch, first = progress.epoch, progress.step
    batches = epoch_batches(hp, indices, steps, epoch)[first:]
    batches = torch.stack([shard(b, accelerator.process_index, accelerator.num_processes) for b in batches])
    seeds = step_seeds(hp["seed"], epoch, steps)[first:]
    loss_sum = torch.tensor(progress.loss_sum, device=accelerator.device)
    z_std_sum = torch.tensor(progress.z_std_sum, device=accelerator.device)
    first_bad = torch.tensor(-1, device=accelerator.device)  # the first step with a non-finite loss
    tic = time.time()
    for step, (view1, view2) in enumerate(pairs.pairs(batches, seeds), start=first):
        lr = apply_scheduled_lr(optimizer, initial_lr, epoch, step, steps, hp)
        if view1.device.type == "cuda":
            view1 = view1.contiguous(memory_format=torch.channels_last)
            view2 = view2.contiguous(memory_format=torch.channels_last)
        with accelerator.autocast():
            out = model(view1, view2)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(out.loss)
        optimizer.step()
        method.on_step_end((epoch * steps + step + 1) / (hp["epochs"] * steps))
        loss_sum += out.loss.detach().float()
        z_std_sum += normalized_std(out.projections)
        if log:
            log.step(epoch, step, out.loss, lr)
        progress.step = step + 1
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(out.loss.detach()), step, first_bad)
        # Reading the flag (and agreeing on a stop between processes) syncs with the device: every
        # step on a CPU, where that is free, every CHECK_EVERY steps (and at the epoch's end) on an
        # accelerator.
        check = view1.device.type == "cpu" or progress.step % CHECK_EVERY == 0 or progress.step == steps
        if check:
            _stop_if_diverged(first_bad, epoch, steps, initial_lr, hp, run_name)
        if hp["log_every"] and (step + 1) % hp["log_every"] == 0:
            accelerator.print(f"  epoch {epoch + 1} step {step + 1}/{steps} loss {float(loss_sum) / (step + 1):.4f} "
                              f"lr {lr:.4g}", flush=True)
        if check and stop.agreed(accelerator.device) and progress.step < steps:
            break
    progress.loss_sum, progress.z_std_sum = float(loss_sum), float(z_std_sum)
    progress.seconds += time.time() - tic
    progress.projection_dim = out.projections.shape[-1]


def _epoch_row(progress: EpochProgress, steps: int, initial_lr: float, hp, accelerator, started: float) -> dict:
    epoch = progress.epoch
    lr = scheduled_lr(initial_lr, epoch, steps - 1, steps, hp)
    loss = accelerator.reduce(torch.tensor(progress.loss_sum, device=accelerator.device), "mean")
    return {
        "epoch": epoch + 1, "steps": steps,
        "loss": round(float(loss) / steps, 5),
        "lr": round(lr, 6),
        "images_per_s": round(steps * hp["batch_size"] / progress.seconds, 1),
        "z_std": round(progress.z_std_sum / steps, 5), "z_std_healthy": round(progress.projection_dim ** -0.5, 5),
        "elapsed_s": round(time.time() - started, 2),
    }


def _format_row(row: dict[str, Any], epochs: int) -> str:
    left = eta(row["elapsed_s"], row["epoch"], epochs)  # at the run's mean epoch time so far
    tracked = (f"  AUC {row['auc']:.3f}  RankMe {row['rankme']:.1f}  alpha-ReQ {row['alpha_req']:.2f}  "
               f"NESum {row['nesum']:.1f}") if "auc" in row else ""
    return (f"epoch {row['epoch']}/{epochs}  loss {row['loss']:+.4f}  lr {row['lr']:.4g}  "
            f"{row['images_per_s']:.0f} images/s  z_std {row['z_std']:.4f} (healthy ~{row['z_std_healthy']:.4f})"
            f"{tracked}  {duration(row['elapsed_s'])}" + (f", ETA {left}" if left else ""))


def _finish(files: RunDir, backbone: torch.nn.Module, settings: dict[str, Any], epochs_trained: int,
            extras: dict[str, Any] | None = None) -> RunDir:
    write_text(files.settings, yaml.safe_dump(settings, sort_keys=False))
    save_backbone(files.checkpoint, backbone, settings["model"], settings["run"], epochs_trained, extras)
    write_json(files.info, {**settings["run"], "epochs_trained": epochs_trained})
    return files
