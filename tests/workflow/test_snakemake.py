"""The Snakemake workflow: dry-runs of every shipped config, validation, and a real end-to-end run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from siamcollapse import plan
from siamcollapse.codedeps import code_digest
from siamcollapse.config import load_experiment

from .conftest import REPO, snakemake, stand_in_image_folder

CONFIGS = ["config.yaml", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").glob("*.yaml"))]
STAGES = {"pretrain", "extract_features", "linear_probe", "knn", "make_subset", "collect_tables", "plot_figures"}


def job_counts(dry_run_output: str) -> dict[str, int]:
    table = dry_run_output.split("Job stats:")[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def check_every_stage_is_planned(counts: dict[str, int], configfiles: list[Path]) -> None:
    """A dry-run's job counts (``job_counts``) are what the plan expands the config to: every stage,
    one job per run where the run has it. The parity test of DVC's pipelines runs the dry-runs."""
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


def test_every_code_stamp_exists_before_the_dag_is_built(workdir):
    """Snakemake lists a directory once per DAG and trusts that list: a stamp an input function
    wrote after knn's stamp had made its directory listed used to read as missing (a target order
    that only hash ordering chose, once in a few runs)."""
    run_dir = Path("results/test/runs/mocov3-resnet18-100pct")
    proc = snakemake(workdir, "-n", run_dir / "knn.json", run_dir / "linear_probe.json", "--configfile",
                     REPO / "configs/test.yaml", check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert job_counts(proc.stdout)["linear_probe"] == 1


def test_lint_passes():
    proc = snakemake(REPO, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "override,key",
    [("pretrain={epochs: 0}", "pretrain.epochs"), ("linear_probe={learning_rate: 1}", "linear_probe.learning_rate"),
     ("dataset={source: mnist}", "dataset.source"),
     # what the config implies, found before any job (siamcollapse.preflight)
     ("resources={pretrain: {gpu: 3}}", "runs.simsiam-resnet18.pretrain.batch_size"),
     ("pretrain={batch_size: 4096}", "runs.simsiam-resnet18.pretrain.batch_size"),
     ("knn={k: [5, 5000]}", "knn.k")],
)
def test_bad_config_is_one_clear_error_before_any_job(workdir, override, key):
    proc = snakemake(workdir, "--cores", "1", "--configfile", REPO / "configs/test.yaml", "--config", override,
                     check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (workdir / "results").exists() and not (workdir / "data").exists()


def test_a_key_given_twice_in_a_config_file_is_an_error_naming_it(workdir):
    config = workdir / "twice.yaml"
    config.write_text((REPO / "configs/test.yaml").read_text() + "knn: {k: [5]}\n")
    proc = snakemake(workdir, "-n", "--configfile", config, check=False)
    assert proc.returncode != 0 and "'knn' is given twice" in proc.stderr and "Traceback" not in proc.stderr


def test_the_missing_dataset_advice_works_as_written(workdir):
    """The error for a dataset root that is not there suggests a --config override: it works."""
    config = workdir / "folder.yaml"
    config.write_text((REPO / "configs/test.yaml").read_text().replace("source: embedded", "source: imagefolder"))
    proc = snakemake(workdir, "-n", "--configfile", config, check=False)
    assert proc.returncode != 0 and "'dataset.root'" in proc.stderr
    advice = re.search(r"--config '([^']+)'", proc.stderr)[1]
    root = stand_in_image_folder(workdir / "images")
    snakemake(workdir, "-n", "--configfile", config, "--config", advice.replace("PATH", str(root)))


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
    # each job's code input is its stage's one digest file, not the dozens of files it runs
    inputs = re.findall(r"^    input: (.+)$", proc.stdout, re.MULTILINE)
    assert inputs and not any(".py" in line for line in inputs)
    stamps = {path for line in inputs for path in line.split(", ") if path.endswith(".sha256")}
    assert {Path(stamp).name for stamp in stamps} >= {"knn.sha256", "pretrain.sha256", "extract_features.sha256"}
    for stamp in stamps:
        assert (workdir / stamp).read_text() == code_digest(Path(stamp).name.removesuffix(".sha256"))
        assert command.replace("-", "_") in plan.STAGE_CONFIG_KEYS or command == "pretrain"
