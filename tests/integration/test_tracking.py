"""Experiment trackers through Accelerate, read back with each tracker's own reader: TensorBoard's
event files, MLflow's search API on its file store, DVCLive's files (and `dvc exp show` on a
pipeline that lists them). One run is killed mid-epoch, then preempted, then finished: it stays one
tracker run whose every step is logged once, with the values of its train_log.csv."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from siamcollapse.config import load_experiment
from siamcollapse.dvc_yaml import tracker_metrics
from siamcollapse.errors import TrainingInterrupted, UserInputError
from siamcollapse.layout import OutputTree
from siamcollapse.metrics import SPECTRUM_METRICS
from siamcollapse.training import tracking

from .test_preemption import log_rows, start_and_signal
from .test_stages import pretrain_args, run_cli, whole_subset_experiment

RUN = "simsiam-100pct"
EPOCHS, STEPS = 2, 20
OVERRIDES = {
    "pretrain": {"epochs": EPOCHS, "steps_per_epoch": STEPS, "batch_size": 8, "log_every": 1, "track_every": 1},
    "runs": {"simsiam": {"fractions": [1.0]}},
    "tracking": {"log_with": ["tensorboard", "mlflow", "dvclive"], "project": "tracking-test"},
}


@pytest.fixture(scope="module")
def tracked(tiny_dataset: Path, tmp_path_factory) -> tuple[Path, Path, OutputTree]:
    """(config, run directory, output tree) of a run SIGKILLed in epoch 2, rerun and SIGTERMed later
    in epoch 2, then rerun to the end."""
    config, subset, out = whole_subset_experiment(tiny_dataset, tmp_path_factory.mktemp("tracking"), OVERRIDES)
    tree = OutputTree(Path(load_experiment([config])["output_dir"]))
    run_dir = tree.run(RUN).path
    argv = [str(a) for a in pretrain_args(config, RUN, tiny_dataset, subset, run_dir)]
    killed = start_and_signal([*argv, "--log", str(out / "1.log")], out / "1.log", "  epoch 2 step 5/", signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    stopped = start_and_signal([*argv, "--log", str(out / "2.log")], out / "2.log", "  epoch 2 step 12/",
                               signal.SIGTERM)
    assert stopped.returncode == TrainingInterrupted.exit_code, stopped.stderr[-3000:]
    assert run_cli(*argv, "--log", out / "3.log") == 0  # the last rerun, in this process
    assert "continuing simsiam-100pct after epoch 2 step " in (out / "3.log").read_text()
    return config, run_dir, tree


def expected(run_dir: Path) -> tuple[list[dict[str, str]], set[int]]:
    """(train_log.csv rows, every global step of the run)."""
    rows = log_rows(run_dir)
    assert len(rows) == EPOCHS
    return rows, set(range(1, EPOCHS * STEPS + 1))


def check_series(steps_and_values: list[tuple[int, float]], run_dir: Path) -> None:
    """Per-step losses: every step once, and each epoch's mean is its loss in train_log.csv."""
    rows, all_steps = expected(run_dir)
    steps = [step for step, _ in steps_and_values]
    assert sorted(steps) == sorted(all_steps)  # none missing, none twice
    values = dict(steps_and_values)
    for row in rows:
        epoch = int(row["epoch"])
        mean = sum(values[s] for s in range((epoch - 1) * STEPS + 1, epoch * STEPS + 1)) / STEPS
        assert math.isclose(mean, float(row["loss"]), abs_tol=2e-5), (epoch, mean, row["loss"])


def check_epochs(series: dict[str, list[tuple[int, float]]], run_dir: Path) -> None:
    """Per-epoch values at the step that ends the epoch, as train_log.csv has them."""
    rows, _ = expected(run_dir)
    for column in ["z_std", "lr", "images_per_s", *SPECTRUM_METRICS]:
        logged = series[f"epoch/{column}"]
        assert [step for step, _ in logged] == [int(row["epoch"]) * STEPS for row in rows], column
        for (_, value), row in zip(logged, rows):
            assert math.isclose(value, float(row[column]), rel_tol=1e-6), (column, value, row[column])


def tensorboard_events(directory: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, object]]:
    """(scalars by tag as (step, value), hyperparameters) from every event file under ``directory``."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.util import tensor_util

    scalars: dict[str, list[tuple[int, float]]] = {}
    hparams: dict[str, object] = {}
    for path in sorted(directory.rglob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_start_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                    hparams.update({key: getattr(v, v.WhichOneof("kind"))
                                    for key, v in data.session_start_info.hparams.items()})
                elif not value.tag.startswith("_hparams_"):
                    number = value.simple_value if value.HasField("simple_value") else \
                        float(tensor_util.make_ndarray(value.tensor))
                    scalars.setdefault(value.tag, []).append((event.step, number))
    return scalars, hparams


def test_tensorboard_has_every_step_once_the_epoch_values_and_the_settings(tracked):
    _, run_dir, tree = tracked
    logdir = tree.tracking.tensorboard(RUN)
    scalars, hparams = tensorboard_events(logdir)
    check_series(scalars["train/loss"], run_dir)
    assert len(scalars["train/lr"]) == EPOCHS * STEPS
    check_epochs(scalars, run_dir)
    settings = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert hparams["pretrain.base_lr"] == pytest.approx(settings["pretrain"]["base_lr"])
    assert hparams["run.run"] == RUN and hparams["model.arch"] == settings["model"]["arch"]


def test_mlflow_holds_one_run_named_after_the_run_with_every_step_once(tracked):
    import mlflow
    from mlflow.tracking import MlflowClient

    _, run_dir, tree = tracked
    mlflow.set_tracking_uri(tracking.mlflow_uri(tree.tracking))
    runs = mlflow.search_runs(experiment_names=["tracking-test"], output_format="list")
    assert [run.info.run_name for run in runs] == [RUN]  # the resumed processes continued it
    run = runs[0]
    client = MlflowClient()
    check_series([(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")], run_dir)
    check_epochs({f"epoch/{c}": [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, f"epoch/{c}")]
                  for c in ["z_std", "lr", "images_per_s", *SPECTRUM_METRICS]}, run_dir)
    settings = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert float(run.data.params["pretrain.base_lr"]) == pytest.approx(settings["pretrain"]["base_lr"])


def dvclive_series(path: Path) -> list[tuple[int, float]]:
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    return [(int(fields[header.index("step")]), float(fields[-1])) for fields in (line.split("\t") for line in lines[1:])]


def test_dvclive_writes_metrics_and_plots_that_dvc_exp_show_lists(tracked, tmp_path):
    config, run_dir, tree = tracked
    live = tree.tracking.dvclive(RUN)
    check_series(dvclive_series(live / "plots" / "metrics" / "train" / "loss.tsv"), run_dir)
    rows, _ = expected(run_dir)
    metrics = json.loads(tree.tracking.dvclive_metrics(RUN).read_text())
    assert metrics["epoch"]["z_std"] == pytest.approx(float(rows[-1]["z_std"]))

    # The experiment's folder as a DVC project whose dvc.yaml lists the metrics as the generated
    # pipeline does (relative to it): `dvc exp show` has their columns.
    project = config.parent
    listed = tracker_metrics(load_experiment([config]), [RUN])
    assert listed == [tree.tracking.dvclive_metrics(RUN)]
    dvc = str(Path(sys.executable).with_name("dvc"))
    (project / "dvc.yaml").write_text(yaml.safe_dump({"metrics": [os.path.relpath(p, project) for p in listed]}))
    for command in (["git", "init", "-q"], [dvc, "init", "-q"], ["git", "add", "dvc.yaml", ".dvc"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "pipeline"]):
        subprocess.run(command, cwd=project, check=True, capture_output=True)
    shown = json.loads(subprocess.run([dvc, "exp", "show", "--json"], cwd=project, capture_output=True, text=True,
                                      check=True).stdout)
    workspace = next(row for row in shown if row["rev"] == "workspace")
    columns = workspace["data"]["metrics"][os.path.relpath(listed[0], project)]["data"]
    assert columns["epoch"]["z_std"] == pytest.approx(float(rows[-1]["z_std"]))
    assert columns["step"] == EPOCHS * STEPS  # DVCLive's step after the last epoch's values


def test_a_tracker_whose_package_is_missing_is_an_error_naming_its_extra(monkeypatch):
    find_spec = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None if name == "tensorboard" else
                        find_spec(name))
    with pytest.raises(UserInputError, match=r"tracking.log_with names 'tensorboard'.*-e '\.\[tensorboard\]'"):
        tracking.check_installed(["tensorboard"])


def test_hyperparameters_are_flat_scalars():
    flat = tracking.hyperparameters({"pretrain": {"base_lr": 0.05, "chunks": None}, "knn": {"k": [20, 200]}})
    assert flat == {"pretrain.base_lr": 0.05, "pretrain.chunks": "None", "knn.k": "[20, 200]"}
