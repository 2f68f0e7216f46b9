"""Experiment trackers of a pretraining run, through Accelerate's own tracker API.

``tracking.log_with`` names Accelerate trackers (tensorboard, mlflow, dvclive, wandb, ...). Each
run is one tracker run named after the run, with its resolved settings as hyperparameters. The
file-based trackers write under ``<output_dir>/tracking/`` (``layout.TrackingDir``), MLflow into
a SQLite store there unless ``MLFLOW_TRACKING_URI`` points elsewhere (a tracking server, for
many jobs at once on a cluster's shared filesystem, where SQLite's locks are unreliable).

A run continues its tracker run when it resumes: the ids of tracker runs that cannot be found
again by directory (MLflow, W&B) travel in the training state. Per-step values are logged when the
state they belong to is saved (each epoch's end, or SIGTERM), so a run killed mid-epoch and rerun
logs every step once: a hard kill between the save and the log can lose the steps of that
stretch, never repeat them.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import UserInputError
from ..layout import TrackingDir

# Trackers this project installs as extras of its own name (the others: pip install <name>).
EXTRAS = ("tensorboard", "mlflow", "dvclive", "wandb")


def check_installed(log_with: list[str]) -> None:
    """Fail before any job when a tracker's package (its module has the tracker's name) is missing,
    where Accelerate would only warn."""
    for name in log_with:
        if importlib.util.find_spec(name) is None:
            how = f"pip install -c constraints.txt -e '.[{name}]' in the project" if name in EXTRAS \
                else f"pip install {name}"
            raise UserInputError(f"tracking.log_with names '{name}', but {name} is not installed: "
                                 f"{how} (or drop it from tracking.log_with)")


def hyperparameters(settings: dict[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """``settings`` flattened to dotted keys with scalar values, as every tracker takes them."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(hyperparameters(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:  # lists and None: their text, since TensorBoard's hparams take scalars only
            flat[name] = str(value)
    return flat


@dataclass(frozen=True)
class Tracking:
    """What to log to: the tracker names, their file tree and the tracker project."""

    log_with: tuple[str, ...]
    files: TrackingDir
    project: str

    def trackers(self, run: str, resumed: dict[str, str] | None) -> list[Any]:
        """The ``log_with`` of the run's Accelerator; ``resumed``: the ids saved with the state it
        continues (None when it starts over)."""
        from accelerate.tracking import DVCLiveTracker, MLflowTracker, TensorBoardTracker

        ids = resumed or {}
        trackers: list[Any] = []
        for name in self.log_with:
            if name == "tensorboard":  # writes to <logging_dir>/<run name>
                trackers.append(TensorBoardTracker(run, self.files.tensorboard(run).parent))
            elif name == "mlflow":
                trackers.append(MLflowTracker(self.project, str(self.files.mlflow_artifacts.absolute()),
                                              run_id=ids.get("mlflow"), run_name=run))
            elif name == "dvclive":  # the pipeline's dvc.yaml lists its metrics; DVC makes the experiments
                trackers.append(DVCLiveTracker(dir=str(self.files.dvclive(run)), resume=resumed is not None,
                                               save_dvc_exp=False, dvcyaml=None))
            else:
                trackers.append(name)
        return trackers

    def start(self, accelerator, run: str, settings: dict[str, Any], resumed: dict[str, str] | None) -> None:
        """Start the tracker runs: a new one logs the settings (and clears the run's old TensorBoard
        files; DVCLive clears its own), a resumed one continues."""
        if "mlflow" in self.log_with and "MLFLOW_TRACKING_URI" not in os.environ:  # else the user's store
            import mlflow

            mlflow.set_tracking_uri(mlflow_uri(self.files))
        if accelerator.is_main_process and resumed is None:
            shutil.rmtree(self.files.tensorboard(run), ignore_errors=True)
        ids = resumed or {}
        wandb = {"name": run, **({"id": ids["wandb"], "resume": "must"} if "wandb" in ids else {})}
        with self._one_at_a_time():
            accelerator.init_trackers(self.project, config=hyperparameters(settings) if resumed is None else None,
                                      init_kwargs={"wandb": wandb})

    @contextlib.contextmanager
    def _one_at_a_time(self) -> Iterator[None]:
        """Jobs that start together (Snakemake's --cores) take turns creating MLflow's store and
        experiment: both are a check, then a create, which two processes would race."""
        if "mlflow" not in self.log_with:
            yield
            return
        self.files.path.mkdir(parents=True, exist_ok=True)
        with open(self.files.start_lock, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def run_ids(accelerator) -> dict[str, str]:
        """The ids a resumed run needs to continue its tracker runs (main process only)."""
        ids = {}
        for tracker in accelerator.trackers:
            if tracker.name == "mlflow":
                ids["mlflow"] = tracker.tracker.info.run_id
            elif tracker.name == "wandb":
                ids["wandb"] = tracker.tracker.id
        return ids


def mlflow_uri(files: TrackingDir) -> str:
    """The MLflow store of ``files`` (SQLite: MLflow's file store is in maintenance mode)."""
    files.path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{files.mlflow.absolute()}"


def tracking_of(config: dict[str, Any], output_tree) -> Tracking | None:
    """The tracking of ``config`` (None when ``tracking.log_with`` is empty)."""
    settings = config.get("tracking", {})
    if not settings.get("log_with"):
        return None
    return Tracking(tuple(settings["log_with"]), output_tree.tracking, settings["project"])


class TrackerLog:
    """What a run logs to its trackers: per-step loss and lr, held until the state they belong to is
    saved (``flush``, on every process: the loss is averaged over them), and each epoch's row."""

    def __init__(self, accelerator, steps_per_epoch: int):
        self.accelerator = accelerator
        self.steps_per_epoch = steps_per_epoch
        self.pending: list[tuple[int, Any, float]] = []

    def step(self, epoch: int, step: int, loss, lr: float) -> None:
        """0-based ``epoch`` and ``step``; ``loss`` stays a device tensor (no sync per step)."""
        self.pending.append((epoch * self.steps_per_epoch + step + 1, loss.detach().float(), lr))

    def flush(self) -> None:
        import torch

        if not self.pending:
            return
        losses = self.accelerator.reduce(torch.stack([loss for _, loss, _ in self.pending]), "mean").tolist()
        for (global_step, _, lr), loss in zip(self.pending, losses):
            self.accelerator.log({"train/loss": loss, "train/lr": lr}, step=global_step)
        self.pending.clear()

    def epoch(self, row: dict[str, Any]) -> None:
        """The epoch's row of train_log.csv, at the global step that ends it."""
        values = {f"epoch/{key}": value for key, value in row.items() if key != "steps" and value is not None}
        self.accelerator.log(values, step=row["epoch"] * self.steps_per_epoch)
