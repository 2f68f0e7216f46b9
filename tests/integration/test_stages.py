"""Every stage command on tiny data, through the real CLI entry point and a real config file."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from siamcollapse import cli, metrics, plan
from siamcollapse.config import deep_merge, load_experiment
from siamcollapse.layout import FIGURE_NAMES, FeatureDir, RunDir
from siamcollapse.spectrum_csv import read_spectrum
from siamcollapse.stages import linear_probe as linear_probe_stage
from siamcollapse.training import loop
from siamcollapse.training.checkpoint import load_backbone
from tests.helpers.stage_args import HEALTH_ARGS

STAGES = ["prepare-data", "make-subset", "pretrain", "extract-features", "extract-raw-pixels", "linear-probe", "augmented-probe", "knn",
          "collect-tables", "plot-figures"]


def tiny_experiment(data_root: Path, out: Path) -> dict[str, Any]:
    """A config small enough for seconds on a CPU; ``data_root`` is the ``tiny_dataset`` fixture."""
    return {
        "output_dir": str(out / "results"),
        "dataset": {"source": "embedded", "root": str(data_root), "image_size": 32, "in_memory": True},
        "embedded": {"seed": 0, "num_classes": 10, "train_per_class": 3, "val_per_class": 2, "image_size": 32},
        "model": {"arch": "resnet18", "width": 8, "stem": "imagenet"},
        "pretrain": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8, "num_workers": 0},
        "methods": {"simsiam": {"proj_dim": 32, "pred_dim": 8}},
        "runs": {"tiny": {"fractions": [0.5, 1.0]}},
        "random_init_baseline": True,
        "evaluation": {"batch_size": 16, "num_workers": 0},
        "linear_probe": {"epochs": 3},
        "knn": {"k": [3, 20]},
    }


def write_config(directory: Path, data_root: Path, overrides: dict[str, Any] | None = None,
                 name: str = "config.yaml") -> Path:
    """Write the tiny experiment, deep-merged with ``overrides``, as YAML; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(deep_merge(tiny_experiment(data_root, directory), overrides or {})))
    return path


def run_cli(*args: str | Path) -> int:
    return cli.main([str(a) for a in args])


# The command a user or a workflow runs, for tests that need a separate process.
SIAMCOLLAPSE = Path(sys.executable).with_name("siamcollapse")
# MoCo-v3 heads small enough for a tiny backbone.
TINY_MOCOV3 = {"proj_hidden_dim": 16, "proj_dim": 8, "pred_dim": 16}
# A SimSiam and a MoCo-v3 run (simsiam-100pct, moco-100pct) on the whole training set.
SIMSIAM_AND_MOCOV3 = {
    "methods": {"mocov3": TINY_MOCOV3},
    "runs": {"simsiam": {"fractions": [1.0]},
             "moco": {"fractions": [1.0], "pretrain": {"method": "mocov3", "warmup_epochs": 1}}},
}


def whole_subset_experiment(data_root: Path, out: Path, overrides: dict[str, Any]) -> tuple[Path, Path, Path]:
    """(config, subset file of the whole training set, ``out``) of the tiny experiment with ``overrides``."""
    config = write_config(out, data_root, overrides)
    subset = out / "subset.json"
    assert run_cli("make-subset", "--config", config, "--fraction", "1.0", "--data-root", data_root,
                   "--out", subset) == 0
    return config, subset, out


def pretrain_args(config: Path, run: str, data_root: Path, subset: Path | None, out_dir: Path) -> list[str | Path]:
    args: list[str | Path] = ["pretrain", "--config", config, "--run", run, "--data-root", data_root, "--out-dir", out_dir]
    return args + (["--subset", subset] if subset else [])


def extract_args(config: Path, checkpoint: Path, data_root: Path, out: Path) -> list[str | Path]:
    return ["extract-features", "--config", config, "--checkpoint", checkpoint,
            "--run-settings", RunDir(checkpoint.parent).settings, "--data-root", data_root,
            "--features-dir", out / "features", "--spectrum", out / "spectrum.csv", "--summary", out / "spectrum.json"]


@dataclass
class Pipeline:
    config: Path
    subset: Path
    run_dir: Path


@pytest.fixture(scope="module")
def pipeline(tiny_dataset: Path, tmp_path_factory) -> Pipeline:
    """subset -> pretrain -> extract -> probe -> kNN of run tiny-100pct on the tiny dataset."""
    out = tmp_path_factory.mktemp("pipeline")
    config = write_config(out, tiny_dataset)
    run_dir = out / "runs" / "tiny-100pct"
    subset = out / "subset.json"
    assert run_cli("make-subset", "--config", config, "--fraction", "1.0", "--data-root", tiny_dataset,
                   "--out", subset) == 0
    assert run_cli(*pretrain_args(config, "tiny-100pct", tiny_dataset, subset, run_dir)) == 0
    assert run_cli(*extract_args(config, run_dir / "checkpoint.pt", tiny_dataset, run_dir)) == 0
    assert run_cli("linear-probe", "--config", config, "--checkpoint", run_dir / "checkpoint.pt",
                   "--features-dir", run_dir / "features", "--out", run_dir / "linear_probe.json") == 0
    assert run_cli("knn", "--config", config, "--features-dir", run_dir / "features",
                   "--out", run_dir / "knn.json") == 0
    return Pipeline(config, subset, run_dir)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_pretrain_writes_checkpoint_log_and_resolved_settings(pipeline: Pipeline):
    run_dir = pipeline.run_dir
    _backbone, meta = load_backbone(run_dir / "checkpoint.pt")
    assert meta["epochs_trained"] == 2 and meta["run"]["run"] == "tiny-100pct"
    config = load_experiment([pipeline.config])
    assert meta["model"] == plan.expand_runs(config)["tiny-100pct"].model  # the resolved ResNet keys
    assert {k: meta["model"][k] for k in ("arch", "width", "stem")} == {"arch": "resnet18", "width": 8, "stem": "imagenet"}
    log = (run_dir / "train_log.csv").read_text().splitlines()
    assert log[0].split(",") == loop.LOG_COLUMNS and len(log) == 3
    info = read_json(run_dir / "run.json")
    assert info["method"] == "simsiam" and info["group"] == "tiny" and info["dataset_fraction"] == 1.0
    assert info["seed"] == 0 and info["seed_group"] == "tiny-100pct"  # no seeds listed: today's name
    expected = plan.pretrain_settings(config, plan.expand_runs(config)["tiny-100pct"])
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == expected  # the settings it really used
    assert expected["pretrain"]["proj_dim"] == 32 and expected["pretrain"]["epochs"] == 2
    assert not RunDir(run_dir).resume.exists()


def test_make_subset_takes_its_seed_and_stratification_from_the_config(tiny_dataset: Path, pipeline: Pipeline,
                                                                        tmp_path: Path):
    def subset(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
        out = tmp_path / f"{name}.json"
        assert run_cli("make-subset", "--config", pipeline.config, "--set", json.dumps(overrides), "--fraction", "0.5",
                       "--data-root", tiny_dataset, "--out", out) == 0
        return read_json(out)

    full = read_json(pipeline.subset)
    assert full["count"] == 30 and full["seed"] == 0 and full["stratified"] is True
    default = subset("default", {})
    other = subset("other", {"subsets": {"seed": 3, "stratified": False}})
    assert (other["seed"], other["stratified"]) == (3, False)
    assert other["indices"] != default["indices"] and default["count"] == other["count"] == 15


def test_prepare_data_generates_what_the_config_asks_for(tmp_path: Path, tiny_dataset: Path, capsys):
    config = write_config(tmp_path, tiny_dataset, {"embedded": {"num_classes": 2, "train_per_class": 2,
                                                                "val_per_class": 1, "image_size": 16}})
    assert run_cli("prepare-data", "--config", config, "--out", tmp_path / "data") == 0
    meta = read_json(tmp_path / "data" / "dataset.json")
    assert meta["counts"] == {"train": 4, "val": 2} and meta["image_size"] == 16
    assert len(list((tmp_path / "data" / "train").glob("*/*.png"))) == 4


def _exact_spectrum(features: np.ndarray) -> np.ndarray:
    x = features.astype(np.float64)
    exact = np.linalg.svd(x - x.mean(0), compute_uv=False)
    return np.pad(exact, (0, x.shape[1] - len(exact)))  # N < d: the remaining values are zero


def test_extract_writes_features_and_spectra_that_match_them(pipeline: Pipeline):
    run_dir = pipeline.run_dir
    train = np.load(run_dir / "features" / "train.npy")
    labels = np.load(run_dir / "features" / "train_labels.npy")
    assert train.shape == (30, 64) and labels.tolist() == sorted(labels.tolist())
    header = (run_dir / "spectrum.csv").read_text().splitlines()[0].split(",")
    assert header == ["index", "singular_value", "normalized_singular_value", "log10_normalized_singular_value",
                      "cumulative_explained_variance", "singular_value_train_l2", "singular_value_val_raw",
                      "singular_value_val_l2"]
    summary = read_json(run_dir / "spectrum.json")
    for split in ("train", "val"):
        features = np.load(run_dir / "features" / f"{split}.npy")
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        for kind, matrix in (("raw", features), ("l2", unit)):
            variant = f"{split}_{kind}"
            streamed, exact = read_spectrum(run_dir / "spectrum.csv", variant), _exact_spectrum(matrix)
            assert np.max(np.abs(streamed - exact)) <= 1e-6 * exact[0], variant
            assert summary["variants"][variant]["rankme"] == pytest.approx(metrics.rankme(exact), rel=1e-6)
    assert summary["variants"]["train_raw"] == {k: summary[k] for k in summary["variants"]["train_raw"]}  # the headline
    assert 0.5 < summary["auc"] <= 1.0 and summary["dims"] == 64 and (summary["split"], summary["features"]) == ("train", "raw")
    # LiDAR: the fixed sample (the whole 30-image training set here) under the configured views
    assert (summary["lidar_images"], summary["lidar_views"]) == (30, 8)
    assert 1 <= summary["lidar"] <= 64 and 1 <= summary["lidar_l2"] <= 64


def test_probe_and_knn_report_accuracies_with_the_configured_settings(pipeline: Pipeline):
    probe = read_json(pipeline.run_dir / "linear_probe.json")
    assert 0 <= probe["linear_top1"] <= 100 and probe["backbone_unchanged"]
    assert probe["epochs"] == 3 and probe["lr"] == 0.1  # the config's value, then the schema's default
    knn = read_json(pipeline.run_dir / "knn.json")
    assert knn["knn_k"] == 3 and knn["temperature"] == 0.07
    assert set(knn) >= {"knn_top1", "knn_top1_k3", "knn_top1_k20"} and knn["knn_top1"] == knn["knn_top1_k3"]


def test_a_stage_sees_only_the_config_keys_it_declares(pipeline: Pipeline, tmp_path: Path, monkeypatch):
    """The kNN stage reads knn.k and knn.temperature; with knn.k undeclared it stops, naming the key,
    before writing anything (its params would not record what it read)."""
    from siamcollapse import plan

    monkeypatch.setitem(plan.STAGE_CONFIG_KEYS, "knn", ["knn.temperature"])
    out = tmp_path / "knn.json"
    with pytest.raises(KeyError, match=r"'knn\.k'.*does not declare"):
        run_cli("knn", "--config", pipeline.config, "--features-dir", pipeline.run_dir / "features", "--out", out)
    assert not out.exists()
    monkeypatch.setitem(plan.STAGE_CONFIG_KEYS, "knn", ["knn"])
    assert run_cli("knn", "--config", pipeline.config, "--features-dir", pipeline.run_dir / "features", "--out", out) == 0


def test_set_overrides_what_linear_probe_runs(pipeline: Pipeline, tmp_path: Path, monkeypatch):
    real, seen = linear_probe_stage.train_linear_probe, []

    def spy(train, labels, settings, num_classes):
        seen.append(dict(settings))
        return real(train, labels, settings, num_classes)

    monkeypatch.setattr(linear_probe_stage, "train_linear_probe", spy)
    out = tmp_path / "probe.json"
    assert run_cli("linear-probe", "--config", pipeline.config, "--set", '{"linear_probe": {"epochs": 1}}',
                   "--checkpoint", pipeline.run_dir / "checkpoint.pt", "--features-dir", pipeline.run_dir / "features",
                   "--out", out) == 0
    assert [s["epochs"] for s in seen] == [1]
    assert read_json(out)["epochs"] == 1 and read_json(pipeline.run_dir / "linear_probe.json")["epochs"] == 3


def test_later_config_files_and_set_override_earlier_ones_for_knn(pipeline: Pipeline, tmp_path: Path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({"knn": {"k": [5, 1], "temperature": 0.5}}))
    out = tmp_path / "knn.json"
    assert run_cli("knn", "--config", pipeline.config, "--config", extra, "--set", '{"knn": {"temperature": 0.25}}',
                   "--features-dir", pipeline.run_dir / "features", "--out", out) == 0
    result = read_json(out)
    assert result["knn_k"] == 5 and result["temperature"] == 0.25
    assert {k for k in result if k.startswith("knn_top1_k")} == {"knn_top1_k5", "knn_top1_k1"}


def _stage_in_fresh_process(*args: str | Path) -> tuple[bool, int | None]:
    """(whether torch was imported, torch's thread count if it was) after ``siamcollapse ARGS``
    in a fresh interpreter (this one has torch loaded)."""
    probe = ("import sys; from siamcollapse import cli; assert cli.main(sys.argv[1:]) == 0; "
             "torch = sys.modules.get('torch'); print(torch is not None, torch and torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True, check=True)
    loaded, threads = out.stdout.split()[-2:]
    return loaded == "True", int(threads) if loaded == "True" else None


def test_a_stage_that_needs_no_torch_does_not_load_it_and_one_that_does_gets_the_threads(pipeline: Pipeline,
                                                                                         tiny_dataset: Path,
                                                                                         tmp_path: Path):
    knn = ["knn", "--config", pipeline.config, "--features-dir", pipeline.run_dir / "features", "--threads", "1"]
    assert _stage_in_fresh_process(*knn, "--out", tmp_path / "knn.json") == (False, None)
    subset = ["make-subset", "--config", pipeline.config, "--fraction", "1.0", "--data-root", tiny_dataset]
    assert _stage_in_fresh_process(*subset, "--out", tmp_path / "subset.json") == (False, None)
    assert read_json(tmp_path / "subset.json") == read_json(pipeline.subset)
    probe = ["linear-probe", "--config", pipeline.config, "--checkpoint", pipeline.run_dir / "checkpoint.pt",
             "--features-dir", pipeline.run_dir / "features", "--out", tmp_path / "probe.json"]
    assert _stage_in_fresh_process(*probe, "--threads", "1") == (True, 1)
    assert read_json(tmp_path / "knn.json") == read_json(pipeline.run_dir / "knn.json")


def test_knn_refuses_more_neighbours_than_training_images(pipeline: Pipeline, tmp_path: Path, capsys):
    out = tmp_path / "knn.json"
    assert run_cli("knn", "--config", pipeline.config, "--set", '{"knn": {"k": [5, 5000]}}',
                   "--features-dir", pipeline.run_dir / "features", "--out", out) == 2
    assert "key 'knn.k': 5000 neighbours" in capsys.readouterr().err and not out.exists()


def test_probe_refuses_features_of_another_backbone(pipeline: Pipeline, tmp_path: Path, capsys):
    other = tmp_path / "other"
    assert run_cli("pretrain", "--config", pipeline.config, "--set", '{"pretrain": {"seed": 5}}',
                   "--run", "random-init-resnet18-w8", "--data-root", "unused", "--out-dir", other) == 0
    assert read_json(other / "run.json")["epochs_trained"] == 0
    capsys.readouterr()
    code = run_cli("linear-probe", "--config", pipeline.config, "--checkpoint", other / "checkpoint.pt",
                   "--features-dir", pipeline.run_dir / "features", "--out", tmp_path / "probe.json")
    assert code == 2 and "were not extracted from" in capsys.readouterr().err
    assert not (tmp_path / "probe.json").exists()


def test_log_gets_the_printed_lines_and_the_error_of_a_failing_stage(tiny_dataset: Path, pipeline: Pipeline,
                                                                     tmp_path: Path, capsys):
    log = tmp_path / "logs" / "subset.log"
    assert run_cli("make-subset", "--config", pipeline.config, "--fraction", "0.5", "--data-root", tiny_dataset,
                   "--out", tmp_path / "s.json", "--log", log) == 0
    printed = capsys.readouterr().out
    assert "subset 0.5: 15 of 30 training images" in printed  # still on the terminal
    assert printed in log.read_text()

    missing = tmp_path / "no-such-dataset"
    failing = tmp_path / "logs" / "failing.log"
    assert run_cli("make-subset", "--config", pipeline.config, "--fraction", "0.5", "--data-root", missing,
                   "--out", tmp_path / "t.json", "--log", failing) == 2
    error = capsys.readouterr().err
    assert "siamcollapse make-subset: error:" in error and str(missing) in error
    assert error.strip() in failing.read_text()


def test_missing_dataset_path_is_a_clear_error_and_writes_nothing(pipeline: Pipeline, tmp_path: Path, capsys):
    missing = tmp_path / "no-such-dataset"
    code = run_cli("make-subset", "--config", pipeline.config, "--fraction", "0.5", "--data-root", missing,
                   "--out", tmp_path / "s.json")
    assert code == 2 and str(missing) in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_empty_class_folder_is_named(tiny_dataset: Path, pipeline: Pipeline, tmp_path: Path, capsys):
    broken = tmp_path / "data"
    shutil.copytree(tiny_dataset, broken)
    (broken / "train" / "99_empty").mkdir()
    code = run_cli("make-subset", "--config", pipeline.config, "--fraction", "0.5", "--data-root", broken,
                   "--out", tmp_path / "s.json")
    assert code == 2 and "99_empty" in capsys.readouterr().err and not (tmp_path / "s.json").exists()


def test_corrupt_image_is_named_and_extraction_leaves_no_output(tiny_dataset: Path, pipeline: Pipeline,
                                                                 tmp_path: Path, capsys):
    broken = tmp_path / "data"
    shutil.copytree(tiny_dataset, broken)
    victim = min((broken / "val").glob("*/*.png"))
    victim.write_bytes(b"not a png at all")
    out = tmp_path / "run"
    code = run_cli(*extract_args(pipeline.config, pipeline.run_dir / "checkpoint.pt", broken, out))
    assert code == 2 and victim.name in capsys.readouterr().err
    assert not (out / "spectrum.csv").exists() and not (out / "spectrum.json").exists()
    assert not (out / "features" / "meta.json").exists() and not list((out / "features").glob("val*"))


def test_a_val_split_lacking_a_class_is_refused_unless_the_config_allows_it(tiny_dataset: Path, pipeline: Pipeline,
                                                                             tmp_path: Path, capsys):
    """Refused, naming the setting; allowed, its features keep the training split's labels."""
    partial = tmp_path / "data"
    shutil.copytree(tiny_dataset, partial)
    first = min(p for p in (partial / "val").iterdir() if p.is_dir())
    shutil.rmtree(first)
    out = tmp_path / "run"
    assert run_cli(*extract_args(pipeline.config, pipeline.run_dir / "checkpoint.pt", partial, out)) == 2
    assert "'dataset.val_classes'" in capsys.readouterr().err and not (out / "spectrum.json").exists()
    allowed = write_config(tmp_path / "allowed", partial, {"dataset": {"val_classes": "subset"}})
    assert run_cli(*extract_args(allowed, pipeline.run_dir / "checkpoint.pt", partial, out)) == 0
    assert f"{partial / 'val'} lacks 1 of the 10 classes" in capsys.readouterr().err
    labels = np.load(FeatureDir(out / "features").labels("val"))
    assert 0 not in labels and sorted(set(labels.tolist())) == list(range(1, 10))  # train's labels, by name


def test_pretrain_rejects_a_subset_made_for_another_dataset(tiny_dataset: Path, pipeline: Pipeline, tmp_path: Path,
                                                            capsys):
    (tmp_path / "s.json").write_text(json.dumps({"num_train": 999, "indices": [0, 1]}))
    code = run_cli(*pretrain_args(pipeline.config, "tiny-50pct", tiny_dataset, tmp_path / "s.json", tmp_path / "run"))
    assert code == 2 and "regenerate" in capsys.readouterr().err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_pretrain_of_a_run_not_in_the_config_names_it_and_writes_nothing(tiny_dataset: Path, pipeline: Pipeline,
                                                                         tmp_path: Path, capsys):
    code = run_cli(*pretrain_args(pipeline.config, "no-such-run", tiny_dataset, pipeline.subset, tmp_path / "run"))
    error = capsys.readouterr().err
    assert code == 2 and "'no-such-run'" in error and "tiny-100pct" in error  # names it and the runs there are
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", ["file", "set"])
@pytest.mark.parametrize("stage", ["make-subset", "pretrain", "linear-probe", "knn"])
def test_unknown_config_key_fails_before_any_output(tiny_dataset: Path, pipeline: Pipeline, tmp_path: Path, capsys,
                                                    stage: str, where: str):
    typo = {"linear_probe": {"epoch": 1}}
    config = write_config(tmp_path, tiny_dataset, typo if where == "file" else None)
    options: list[str | Path] = ["--config", config] + (["--set", json.dumps(typo)] if where == "set" else [])
    out = tmp_path / "out"
    rest: dict[str, list[str | Path]] = {
        "make-subset": ["--fraction", "1.0", "--data-root", tiny_dataset, "--out", out / "s.json"],
        "pretrain": ["--run", "tiny-100pct", "--data-root", tiny_dataset, "--subset", pipeline.subset,
                     "--out-dir", out],
        "linear-probe": ["--checkpoint", pipeline.run_dir / "checkpoint.pt",
                         "--features-dir", pipeline.run_dir / "features", "--out", out / "probe.json"],
        "knn": ["--features-dir", pipeline.run_dir / "features", "--out", out / "knn.json"],
    }
    assert run_cli(stage, *options, *rest[stage]) == 2
    error = capsys.readouterr().err
    assert "'linear_probe.epoch'" in error and "unknown key" in error
    assert not out.exists()


def test_config_reading_stages_require_a_config_and_the_others_take_none(pipeline: Pipeline, tmp_path: Path,
                                                                          capsys):
    with pytest.raises(SystemExit) as exit_:
        run_cli("knn", "--features-dir", pipeline.run_dir / "features", "--out", tmp_path / "knn.json")
    assert exit_.value.code == 2 and "--config" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        run_cli("collect-tables", "--config", pipeline.config, "--run-dirs", pipeline.run_dir, "--out-dir", tmp_path / "t")
    assert exit_.value.code == 2 and not (tmp_path / "t").exists()
    with pytest.raises(SystemExit) as exit_:
        run_cli("knn", "--config", pipeline.config, "--set", "[1]", "--features-dir", pipeline.run_dir / "features",
                "--out", tmp_path / "knn.json")
    assert exit_.value.code == 2 and "must be a JSON object" in capsys.readouterr().err


def test_collect_and_plot_read_the_run_outputs(pipeline: Pipeline, tmp_path: Path):
    table = tmp_path / "runs.csv"
    assert run_cli("collect-tables", *HEALTH_ARGS, "--run-dirs", pipeline.run_dir, "--out-dir", tmp_path) == 0
    rows = table.read_text().splitlines()
    assert len(rows) == 2 and "tiny-100pct" in rows[1]
    assert run_cli("plot-figures", "--table", table, "--run-dirs", pipeline.run_dir, "--out-dir", tmp_path / "figures") == 0
    assert sorted(p.name for p in (tmp_path / "figures").glob("*.png")) == sorted(FIGURE_NAMES)


def test_console_script_lists_every_stage():
    exe = Path(sys.executable).with_name("siamcollapse")
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    for stage in STAGES:
        assert stage in help_text


def test_streaming_from_disk_trains_and_extracts_the_same_features_as_in_memory(tiny_dataset: Path,
                                                                                 pipeline: Pipeline, tmp_path: Path):
    streaming = ["--set", '{"dataset": {"in_memory": false}}']
    run_dir = tmp_path / "run"
    assert run_cli(*pretrain_args(pipeline.config, "tiny-100pct", tiny_dataset, pipeline.subset, run_dir),
                   *streaming) == 0
    assert len((run_dir / "train_log.csv").read_text().splitlines()) == 3
    assert all(row["rankme"] for row in csv.DictReader((run_dir / "train_log.csv").open()))  # tracked, decoded from disk
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["data"]["in_memory"] is False
    out = tmp_path / "extract"
    assert run_cli(*extract_args(pipeline.config, pipeline.run_dir / "checkpoint.pt", tiny_dataset, out),
                   *streaming) == 0
    for name in ["train.npy", "val.npy"]:
        assert np.allclose(np.load(out / "features" / name), np.load(pipeline.run_dir / "features" / name), atol=1e-5)
    assert read_json(out / "spectrum.json")["lidar_images"] == 30  # views cropped from images decoded one by one


def test_pretrain_refuses_the_subset_of_another_fraction(tiny_dataset: Path, tmp_path: Path, capsys):
    config = write_config(tmp_path, tiny_dataset)
    assert run_cli("make-subset", "--config", config, "--fraction", "1.0", "--data-root", tiny_dataset,
                   "--out", tmp_path / "full.json") == 0
    code = run_cli("pretrain", "--config", config, "--run", "tiny-50pct", "--data-root", tiny_dataset,
                   "--subset", tmp_path / "full.json", "--out-dir", tmp_path / "run")
    assert code == 2
    assert "fraction 1" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_the_raw_pixel_floor_extracts_pixels_and_is_probed_without_a_checkpoint(tiny_dataset: Path, tmp_path: Path,
                                                                                 pipeline: Pipeline, capsys):
    config = write_config(tmp_path, tiny_dataset, {"raw_pixels": {"max_side": 8}})
    out = tmp_path / "raw-pixels"
    assert run_cli("extract-raw-pixels", "--config", config, "--data-root", tiny_dataset, "--features-dir", out / "features",
                   "--spectrum", out / "spectrum.csv", "--summary", out / "spectrum.json", "--info", out / "run.json",
                   "--settings", out / "config.yaml") == 0
    train = np.load(out / "features" / "train.npy")
    assert train.shape == (30, 3 * 8 * 8)  # 32 px area-downsampled to 8 x 8, flattened
    meta = read_json(out / "features" / "meta.json")
    assert meta["source"] == "raw-pixels" and meta["dim"] == 192
    # the features are the normalised eval-transformed pixels, pooled: an image's mean over pixels is kept
    from siamcollapse.data.augment import eval_transform
    from siamcollapse.data.sources import load_split
    from siamcollapse.evaluation.features import MEAN, STD

    images = load_split("embedded", tiny_dataset, "train", 32).images[:2]
    pixels = eval_transform(images, 32, MEAN, STD)
    np.testing.assert_allclose(train[:2].reshape(2, 3, 64).mean(-1), pixels.mean((-1, -2)).numpy(), rtol=1e-5, atol=1e-5)
    info = read_json(out / "run.json")
    assert info["run"] == info["method"] == plan.RAW_PIXELS and info["pixels_side"] == 8
    assert yaml.safe_load((out / "config.yaml").read_text())["raw_pixels"]["max_side"] == 8
    assert read_spectrum(out / "spectrum.csv").size == 192
    # the cached probe takes no checkpoint for pixels, and refuses one
    assert run_cli("linear-probe", "--config", config, "--features-dir", out / "features",
                   "--out", out / "linear_probe.json") == 0
    result = read_json(out / "linear_probe.json")
    assert 0 <= result["linear_top1"] <= 100 and result["backbone_fingerprint"] is None
    capsys.readouterr()
    assert run_cli("linear-probe", "--config", config, "--checkpoint", pipeline.run_dir / "checkpoint.pt",
                   "--features-dir", out / "features", "--out", tmp_path / "x.json") == 2
    assert "raw pixels" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_backbone_features_still_need_their_checkpoint(pipeline: Pipeline, tmp_path: Path, capsys):
    assert run_cli("linear-probe", "--config", pipeline.config, "--features-dir", pipeline.run_dir / "features",
                   "--out", tmp_path / "x.json") == 2
    assert "give its --checkpoint" in capsys.readouterr().err and not (tmp_path / "x.json").exists()


def test_extract_pixels_of_a_config_without_the_floor_names_the_run(tiny_dataset: Path, tmp_path: Path, capsys):
    config = write_config(tmp_path, tiny_dataset, {"random_init_baseline": False})
    out = tmp_path / "raw"
    assert run_cli("extract-raw-pixels", "--config", config, "--data-root", tiny_dataset, "--features-dir", out / "features",
                   "--spectrum", out / "s.csv", "--summary", out / "s.json", "--info", out / "run.json",
                   "--settings", out / "config.yaml") == 2
    assert "raw-pixels" in capsys.readouterr().err and not out.exists()
