"""The Snakemake workflow: dry-runs of every shipped config, validation, and a real end-to-end run."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from siamcollapse import plan
from siamcollapse.config import load_experiment
from siamcollapse.layout import FIGURE_NAMES, TABLE_FILES

from .conftest import REPO, copy_tree, edit_yaml, in_project, runs_of_test_config, snakemake

CONFIGS = ["config.yaml", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").glob("*.yaml"))]
STAGES = {"pretrain", "extract_features", "linear_probe", "knn", "make_subset", "collect_tables", "plot_figures"}


def external_dataset_override(config_name: str, workdir: Path) -> list[str]:
    """Configs that read a dataset from disk get an (empty but existing) root in the scratch dir."""
    config = yaml.safe_load((REPO / config_name).read_text())
    if config.get("dataset", {}).get("source", "embedded") == "embedded":
        return []
    root = workdir / "dataset"
    root.mkdir(exist_ok=True)
    override = workdir / "override.yaml"
    override.write_text(yaml.safe_dump({"dataset": {"root": str(root)}}))
    return [str(override)]


def job_counts(dry_run_output: str) -> dict[str, int]:
    table = dry_run_output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


@pytest.mark.parametrize("config_name", CONFIGS)
def test_dry_run_lists_every_stage(config_name, workdir):
    configfiles = [str(REPO / config_name), *external_dataset_override(config_name, workdir)]
    proc = snakemake(workdir, "-n", "--configfile", *configfiles)
    counts = job_counts(proc.stdout)
    assert STAGES <= set(counts), counts
    runs = plan.expand_runs(load_experiment(configfiles))  # the plan's own expansion is unit-tested
    students = [run for run in runs.values() if run.teacher is not None]
    baselines = [run for run in runs.values() if run.is_baseline]
    pixels = [run for run in runs.values() if run.is_raw_pixels]  # no pretraining, no backbone
    assert counts.get("distill", 0) == len(students) and counts.get("random_init", 0) == len(baselines)
    assert counts["pretrain"] == len(runs) - len(students) - len(baselines) - len(pixels)
    assert counts["extract_features"] == len(runs) - len(pixels)
    assert counts.get("extract_raw_pixels", 0) == len(pixels)
    assert counts["knn"] == len(runs)
    snapshots = sum(len(plan.snapshot_epochs(runs, name)) for name in runs)
    assert counts.get("pretrain_segment", 0) == snapshots


def test_lint_passes():
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "override,key",
    [("pretrain={epochs: 0}", "pretrain.epochs"), ("linear_probe={learning_rate: 1}", "linear_probe.learning_rate"),
     ("dataset={source: mnist}", "dataset.source")],
)
def test_bad_config_is_one_clear_error_before_any_job(workdir, override, key):
    proc = snakemake(workdir, "--cores", "1", "--configfile", REPO / "configs/test.yaml", "--config", override,
                     check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


def check_results_of_the_test_config(project: Path) -> None:
    """What a complete run of configs/test.yaml leaves: tables, figures, settings, logs, a report."""
    out = project / "results" / "test"
    table = pd.read_csv(out / "tables" / "runs.csv")
    assert {"run", "method", "arch", "dataset_fraction", "strategy", "auc", "linear_top1", "knn_top1"} <= set(table)
    assert sorted(table["run"]) == sorted(runs_of_test_config())
    assert table["auc"].between(0.5, 1.0).all() and table["linear_top1"].between(0, 100).all()
    assert set(table["method"]) == {"simsiam", "mocov3", "distill", "random-init", "raw-pixels"}
    seeded = table[table["seed_group"] == "simsiam-resnet18-decaypred-100pct"]
    assert sorted(seeded["seed"]) == [0, 1]  # one run per listed seed, each with its seed
    assert set(table["strategy"]) == {"iid", "single-pass", "hybrid", "none"}
    for name in FIGURE_NAMES:
        assert (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    for name in TABLE_FILES:
        assert (out / "tables" / name).stat().st_size > 0
    summary = (out / "tables" / "runs.md").read_text()
    assert "simsiam-resnet18-50pct" in summary and "**Floors**" in summary and "chance 10.0 %" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| simsiam-resnet18-decaypred-100pct |"))
    assert "| 2 | 0, 1 |" in row and " ± " in row  # the two seeds folded into mean ± sd
    for run in table["run"]:
        assert (out / "runs" / run / "config.yaml").is_file()  # every run keeps its resolved settings
        stage = "extract" if run == plan.RAW_PIXELS else "pretrain"
        assert (out / "logs" / stage / f"{run}.log").is_file()

    in_project(project, "snakemake", "--configfile", "configs/test.yaml", "--report", "report.html")
    html = (project / "report.html").read_text(errors="replace")
    assert "auc_vs_linear_top1" in html and "partial dimensional collapse" in html.lower()


def planned(project: Path, *args: str) -> tuple[dict[str, int], set[str]]:
    """Jobs per rule, and the runs they touch, that Snakemake would execute now (dry-run)."""
    proc = in_project(project, "snakemake", "-n", "--configfile", "configs/test.yaml", *args)
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return {}, set()
    return job_counts(proc.stdout), set(re.findall(r"wildcards: run=([^\s,]+)", proc.stdout))


def test_snakemake_reruns_only_invalidated_stages(local_test_run, tmp_path):
    run = ("snakemake", "--cores", "2", "--configfile", "configs/test.yaml")
    project = copy_tree(local_test_run, tmp_path / "project")  # the shared run, copied: this test edits it
    check_results_of_the_test_config(project)
    assert planned(project) == ({}, set())

    (project / "README.md").write_text((project / "README.md").read_text() + "\nAn unrelated note.\n")
    assert planned(project) == ({}, set())

    edit_yaml(project / "configs/test.yaml", ("linear_probe.lr", 0.2))
    jobs, runs = planned(project)
    probes = len(runs_of_test_config())
    assert jobs == {"linear_probe": probes, "collect_tables": 1, "plot_figures": 1, "all": 1, "total": probes + 3}
    checkpoint = project / "results/test/runs/simsiam-resnet18-50pct/checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    in_project(project, *run)
    assert checkpoint.stat().st_mtime_ns == before
    assert '"lr": 0.2' in (project / "results/test/runs/simsiam-resnet18-50pct/linear_probe.json").read_text()

    edit_yaml(project / "configs/test.yaml", ("runs.simsiam-resnet18-decaypred.pretrain.epochs", 1))
    jobs, runs = planned(project)
    assert runs == {"simsiam-resnet18-decaypred-100pct-s0", "simsiam-resnet18-decaypred-100pct-s1"}  # both seeds
    assert jobs == {"pretrain": 2, "extract_features": 2, "linear_probe": 2, "knn": 2, "collect_tables": 1,
                    "plot_figures": 1, "all": 1, "total": 11}
    in_project(project, *run)

    # The hybrid run and the rest of its single-pass run continue the epoch-1 state: redoing it
    # redoes both and nothing else.
    jobs, runs = planned(project, "--forcerun", "pretrain_segment")
    assert runs == {"simsiam-resnet18-singlepass-100pct", "simsiam-resnet18-hybrid-100pct"}
    assert jobs["pretrain_segment"] == 1 and jobs["pretrain"] == 2 and jobs["extract_features"] == 2
    # (test_dvc.py records this run's work in DVC with one command and edits it through DVC.)


def test_command_line_overrides_reach_every_stage_command(workdir):
    proc = snakemake(workdir, "-n", "-p", "--configfile", REPO / "configs/test.yaml", "--config", "linear_probe={lr: 0.3}")
    commands = re.findall(r"^Shell command: (siamcollapse .+)$", proc.stdout, re.MULTILINE)
    assert len(commands) >= 8
    for command in commands:
        if "--config" in command:  # every config-reading stage gets the override on top of the file
            assert """--set '{"linear_probe": {"lr": "0.3"}}'""" in command, command


# Rules that are pretraining jobs of a special kind: they run the pretrain stage.
PRETRAIN_RULES = {"pretrain_segment", "distill", "random_init"}


def test_every_rule_runs_the_stage_command_of_its_own_name(workdir):
    """One spelling per stage: rule extract_features runs `siamcollapse extract-features`, whose
    code is stages/extract_features.py (and whose config keys plan.STAGE_CONFIG_KEYS lists)."""
    proc = snakemake(workdir, "-n", "-p", "--configfile", REPO / "configs/test.yaml")
    pairs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", proc.stdout):
        rule, command = re.match(r"(?:local)?rule (\w+):", block), re.search(r"^Shell command: siamcollapse ([\w-]+)",
                                                                             block, re.MULTILINE)
        if rule and command:
            pairs.append((rule[1], command[1]))
    assert {rule for rule, _ in pairs} >= {"prepare_data", "make_subset", "pretrain", "extract_features",
                                           "extract_raw_pixels", "linear_probe", "knn", "collect_tables",
                                           "plot_figures", *PRETRAIN_RULES}
    for rule, command in pairs:
        assert command == ("pretrain" if rule in PRETRAIN_RULES else rule.replace("_", "-")), rule
        assert command.replace("-", "_") in plan.STAGE_CONFIG_KEYS or command == "pretrain"
