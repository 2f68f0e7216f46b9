"""What the one shared local run of configs/test.yaml shows: its results and report, what each
engine reruns after edits (Snakemake by itself; DVC after recording Snakemake's work with one
command), and that the SLURM run of the same config, made beside it, gives the same results."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from siamcollapse import cli, plan
from siamcollapse.config import load_experiment
from siamcollapse.dvc_yaml import CHECK_STAGE, TRAINING_CURVES
from siamcollapse.layout import COST_TABLE_FILES, FIGURE_NAMES, TABLE_FILES, run_group_figure

from .conftest import copy_tree, edit_yaml, in_project, runs_of_test_config
from .slurm_cluster import ClusterUnavailable, missing_requirement
from .test_dvc import TEST_PIPELINE, changed_stages, dvc_repro
from .test_slurm import LEFT_OUT_RULES, SUBMITTED, SlurmRun, fingerprints
from .test_snakemake import job_counts

# Collected first (tests/conftest.py), as one unit of a parallel session (`--dist loadfile`):
# the worker that runs this file starts the SLURM run, makes the shared run beside it, then both
# reruns, and last compares the SLURM run's results with the shared run's.
pytestmark = pytest.mark.long_chain
SLURM_RUN_TIMEOUT_S = 900


@pytest.fixture(scope="session", autouse=True)
def slurm_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmRun | str]:
    """The SLURM run (``SlurmRun``), started before this file's first test asks for the shared
    local run: its jobs, short and mostly waiting on the executor's status checks, run beside the
    local run instead of holding a worker of their own. Where the SLURM test is not selected,
    nothing starts; where no cluster can start, the reason why (the SLURM test skips with it)."""
    if not any(item.get_closest_marker("slurm") for item in request.session.items):
        yield "the SLURM test is not selected"
        return
    reason = missing_requirement()
    if reason:
        yield reason
        return
    run = SlurmRun(tmp_path_factory.mktemp("slurm-run") / "project")
    try:
        run.start()
    except (ClusterUnavailable, OSError) as exc:
        run.stop()
        yield f"could not start a SLURM cluster: {exc}"
        return
    try:
        yield run
    finally:
        run.stop()


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

    # Every job's benchmark; the cost table has each job that ran before the tables (theirs and the
    # figures' come after), with its measured wall and CPU time.
    benchmarks = {(path.parent.name, path.stem) for path in (out / "benchmarks").glob("*/*.tsv")}
    assert {family for family, _ in benchmarks} >= {"prepare_data", "make_subset", "pretrain", "pretrain_segment",
                                                    "distill", "random_init", "extract_features", "linear_probe",
                                                    "knn", "collect_tables", "plot_figures"}
    costs = pd.read_csv(out / "tables" / COST_TABLE_FILES[0])
    assert set(zip(costs["family"], costs["job"])) == benchmarks - {("collect_tables", "collect_tables"),
                                                                    ("plot_figures", "plot_figures")}
    assert set(costs[costs["family"] == "pretrain"]["job"]) <= set(table["run"])
    assert (costs["wall_s"] > 0).all() and (costs["cpu_s"] >= 0).all()
    # Memory is measured for every job that outlived Snakemake's first samples (every 0.5 s); a
    # job over sooner has none (never 0 MB), and the training jobs all have theirs.
    unmeasured = costs["max_rss_mb"].isna()
    assert (costs["max_rss_mb"][~unmeasured] > 0).all() and (costs["wall_s"][unmeasured] < 2).all()
    assert not unmeasured[costs["family"].isin(["pretrain", "distill"])].any()
    assert "| pretrain |" in (out / "tables" / COST_TABLE_FILES[1]).read_text()

    in_project(project, "snakemake", "--configfile", "configs/test.yaml", "--report", "report.html")
    html = (project / "report.html").read_text(errors="replace")
    assert "auc_vs_linear_top1" in html and "partial dimensional collapse" in html.lower()
    assert "costs.csv" in html and "What each job of this workflow cost" in html
    # a page of pretraining curves per run group with a trained run, and no other
    groups = plan.trained_groups(plan.expand_runs(load_experiment([project / "configs/test.yaml"])))
    trained = table[~table["method"].isin(["random-init", "raw-pixels"])]
    assert len(groups) >= 5 and set(trained["group"]) == set(groups)
    assert sorted(p.name for p in (out / "figures" / "run_groups").iterdir()) == sorted(f"{g}.png" for g in groups)
    for group in groups:
        assert run_group_figure(out / "figures", group).read_bytes()[:4] == b"\x89PNG"
        assert f"{group}.png" in html and "Pretraining curves" in html


def planned(project: Path, *args: str) -> tuple[dict[str, int], set[str]]:
    """Jobs per rule, and the runs they touch, that Snakemake would execute now (dry-run)."""
    proc = in_project(project, "snakemake", "-n", *args, "--configfile", "configs/test.yaml")  # targets before it
    if "Nothing to be done" in proc.stdout + proc.stderr:
        return {}, set()
    return job_counts(proc.stdout), set(re.findall(r"wildcards: run=([^\s,]+)", proc.stdout))


def test_snakemake_reruns_only_invalidated_stages(local_test_run, tmp_path):
    project = copy_tree(local_test_run, tmp_path / "project")  # the shared run, copied: this test edits it
    check_results_of_the_test_config(project)
    assert planned(project) == ({}, set())

    (project / "README.md").write_text((project / "README.md").read_text() + "\nAn unrelated note.\n")
    assert planned(project) == ({}, set())

    # The hybrid run and the rest of its single-pass run continue the epoch-1 state: redoing it
    # redoes both and nothing else.
    jobs, runs = planned(project, "--forcerun", "pretrain_segment")
    assert runs == {"simsiam-resnet18-singlepass-100pct", "simsiam-resnet18-hybrid-100pct"}
    assert jobs["pretrain_segment"] == 1 and jobs["pretrain"] == 2 and jobs["extract_features"] == 2

    # linear_probe.lr: every probe (and the tables) is planned, nothing upstream.
    config = project / "configs/test.yaml"
    original = config.read_text()
    edit_yaml(config, ("linear_probe.lr", 0.2))
    jobs, runs = planned(project)
    probes = len(runs_of_test_config())
    assert jobs == {"linear_probe": probes, "collect_tables": 1, "plot_figures": 1, "all": 1, "total": probes + 3}
    config.write_text(original)

    # One run's epochs: exactly its two seeds' chains (and the tables) are planned; their
    # pretraining, run, retrains both seeds with the edited settings and nothing else.
    edit_yaml(config, ("runs.simsiam-resnet18-decaypred.pretrain.epochs", 1))
    jobs, runs = planned(project)
    edited = {"simsiam-resnet18-decaypred-100pct-s0", "simsiam-resnet18-decaypred-100pct-s1"}  # both seeds
    assert runs == edited
    assert jobs == {"pretrain": 2, "extract_features": 2, "linear_probe": 2, "knn": 2, "collect_tables": 1,
                    "plot_figures": 1, "all": 1, "total": 11}
    checkpoints = {run: project / f"results/test/runs/{run}/checkpoint.pt"
                   for run in ("simsiam-resnet18-50pct", *edited)}
    before = {run: path.stat().st_mtime_ns for run, path in checkpoints.items()}
    in_project(project, "snakemake", *[checkpoints[run].relative_to(project) for run in sorted(edited)],
               "--cores", "2", "--configfile", "configs/test.yaml")
    assert checkpoints["simsiam-resnet18-50pct"].stat().st_mtime_ns == before["simsiam-resnet18-50pct"]
    assert all(checkpoints[run].stat().st_mtime_ns != before[run] for run in edited)
    for run_name in edited:  # retrained with the edited settings
        assert yaml.safe_load((project / f"results/test/runs/{run_name}/config.yaml").read_text())["run"]["epochs"] == 1

    # A probe of the lr edit, run, takes the new lr and leaves its checkpoint as it was.
    edit_yaml(config, ("linear_probe.lr", 0.2))
    probe = project / "results/test/runs/simsiam-resnet18-50pct/linear_probe.json"
    in_project(project, "snakemake", probe.relative_to(project), "--cores", "1", "--configfile", "configs/test.yaml")
    assert checkpoints["simsiam-resnet18-50pct"].stat().st_mtime_ns == before["simsiam-resnet18-50pct"]
    assert '"lr": 0.2' in probe.read_text()


def truncate(path: Path) -> bytes:
    """Cut ``path`` to half its size (a kill mid-write on a filesystem without atomic rename); its bytes before."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return data


def test_a_broken_or_missing_file_is_regenerated_on_the_next_run(local_test_run, tmp_path):
    """A corrupt final checkpoint is named by the stage that reads it and moved aside: the next
    run retrains that run. A deleted feature file is extracted again. A second config with its
    own output folder shares the data root without regenerating the data."""
    project = copy_tree(local_test_run, tmp_path / "project")
    runs = project / "results" / "test" / "runs"
    run = runs / "simsiam-resnet18-50pct"
    checkpoint = run / "checkpoint.pt"
    truncate(checkpoint)
    # the stage that reads it (the command of the workflow's job, run here in-process)
    assert cli.main(["extract-features", "--config", str(project / "configs/test.yaml"), "--checkpoint",
                     str(checkpoint), "--run-settings", str(run / "config.yaml"), "--data-root",
                     str(project / "data/embedded-test"), "--features-dir", str(tmp_path / "features"),
                     "--spectrum", str(tmp_path / "s.csv"), "--summary", str(tmp_path / "s.json")]) == 2
    assert not checkpoint.exists() and checkpoint.with_name("checkpoint.pt.unreadable").is_file()
    (runs / "mocov3-resnet18-100pct" / "features" / "val.npy").unlink()
    jobs, planned_runs = planned(project)
    assert jobs["pretrain"] == 1 and jobs["extract_features"] == 2  # the retrained run's, the deleted file's
    assert planned_runs == {"simsiam-resnet18-50pct", "mocov3-resnet18-100pct"}

    other = project / "configs" / "other.yaml"
    other.write_text((project / "configs/test.yaml").read_text().replace("output_dir: results/test",
                                                                         "output_dir: results/other"))
    dry_run = in_project(project, "snakemake", "-n", "--configfile", "configs/other.yaml").stdout
    assert "prepare_data" not in job_counts(dry_run) and job_counts(dry_run)["make_subset"] == 2
    # ... but one left at the first config's output folder, with other settings, is refused
    clash = project / "configs" / "clash.yaml"
    clash.write_text((project / "configs/test.yaml").read_text().replace("epochs: 2,", "epochs: 3,"))
    refused = in_project(project, "snakemake", "-n", "--configfile", "configs/clash.yaml", check=False)
    assert refused.returncode != 0 and "key 'output_dir'" in refused.stderr and "configs/test.yaml" in refused.stderr


def test_dvc_reruns_only_invalidated_stages_of_a_snakemake_run_and_snakemake_agrees(local_test_run, tmp_path):
    """One command records Snakemake's work in DVC (the shared local run); DVC then has nothing to
    do, sees exactly what each edit invalidates, reruns that and what follows from it, and
    Snakemake agrees after `--touch`."""
    project = copy_tree(local_test_run, tmp_path / "project")  # the shared run, copied: this test edits it
    in_project(project, "siamcollapse", "dvc-yaml", "--configfile", "configs/test.yaml")
    in_project(project, "dvc", "commit", "--force", TEST_PIPELINE)
    assert "up to date" in in_project(project, "dvc", "status", TEST_PIPELINE).stdout
    assert dvc_repro(project) == set()

    (project / "README.md").write_text((project / "README.md").read_text() + "\nAn unrelated note.\n")
    assert changed_stages(project) == set()
    # A corrupt checkpoint is a changed output: DVC reruns the stage that writes it.
    checkpoint = project / "results/test/runs/simsiam-resnet18-50pct/checkpoint.pt"
    intact = truncate(checkpoint)
    assert {"pretrain-simsiam-resnet18-50pct", "extract_features-simsiam-resnet18-50pct"} <= changed_stages(project)
    checkpoint.write_bytes(intact)
    assert changed_stages(project) == set()

    # Each edit changes exactly the stages that read what it edits (`dvc status`); a repro then
    # runs those and everything downstream of them, nothing else. (The linear-probe and epochs
    # edits are checked at status level: the Snakemake test reruns them for real; here a repro
    # runs the raw-pixel floor's edit, one chain.)
    runs = runs_of_test_config()
    config, original = project / "configs/test.yaml", (project / "configs/test.yaml").read_text()
    edit_yaml(config, ("linear_probe.lr", 0.2))
    assert changed_stages(project) == {CHECK_STAGE, *[f"linear_probe-{run}" for run in runs]}
    config.write_text(original)
    edited = ["simsiam-resnet18-decaypred-100pct-s0", "simsiam-resnet18-decaypred-100pct-s1"]  # both seeds
    edit_yaml(config, ("runs.simsiam-resnet18-decaypred.pretrain.epochs", 1))
    assert changed_stages(project) == {CHECK_STAGE, *[f"pretrain-{run}" for run in edited]}
    config.write_text(original)
    edit_yaml(config, ("raw_pixels.max_side", 4))
    pixels = plan.RAW_PIXELS
    assert dvc_repro(project) == {CHECK_STAGE, "collect_tables", "plot_figures",
                                  *[f"{stage}-{pixels}" for stage in ("extract_raw_pixels", "linear_probe", "knn")]}
    settings = yaml.safe_load((project / f"results/test/runs/{pixels}/config.yaml").read_text())
    assert settings["run"]["pixels_side"] == 4  # extracted with the edited setting
    # `dvc commit` rewrote every file's mtime and Snakemake's params records predate the edits: after
    # `snakemake --touch` (docs/dvc.md) Snakemake agrees there is nothing to do.
    in_project(project, "snakemake", "--touch", "--cores", "1", "--configfile", "configs/test.yaml")
    dry_run = in_project(project, "snakemake", "-n", "--configfile", "configs/test.yaml")
    assert "Nothing to be done" in dry_run.stdout + dry_run.stderr
    metrics = in_project(project, "dvc", "metrics", "show", "--json").stdout
    assert "linear_top1" in metrics and "auc" in metrics
    # every label-free metric of every spectrum variant (spectrum.json), for `dvc metrics show`
    assert all(key in metrics for key in ("rankme", "alpha_req", "nesum", "lidar", "lidar_l2", "val_l2"))
    # `dvc plots show` draws every trained run's training curves, over epochs, from its train_log.csv
    plots = json.loads(in_project(project, "dvc", "plots", "show", TEST_PIPELINE, "--json").stdout)["data"]
    trained = [run for run in runs if not run.startswith((plan.RANDOM_INIT, plan.RAW_PIXELS))]
    for plot_id, (column, _, _) in TRAINING_CURVES.items():
        rows = plots[plot_id][0]["content"]["data"]["values"]
        assert {row["filename"].partition("/")[0] for row in rows} == set(trained), plot_id
        for run in trained:
            log = pd.read_csv(project / f"results/test/runs/{run}/train_log.csv", dtype=str, keep_default_na=False)
            drawn = [(row["epoch"], row[column]) for row in rows if row["filename"] == f"{run}/train_log.csv"]
            assert drawn == list(zip(log["epoch"], log[column])), (plot_id, run)


@pytest.mark.slurm
def test_test_config_runs_as_slurm_jobs_with_the_results_of_a_local_run(slurm_run, local_test_run):
    if isinstance(slurm_run, str):
        pytest.skip(slurm_run)
    project, config, planned = slurm_run.project, slurm_run.config, dict(slurm_run.planned)
    planned.pop("total")
    planned.pop("all")  # the target rule has no command: Snakemake itself completes it, no job to submit
    assert set(planned) == set(slurm_run.planned_by_test_config) - {"total", "all", *LEFT_OUT_RULES}
    output = slurm_run.wait(SLURM_RUN_TIMEOUT_S)

    # Every job was a SLURM job: what Snakemake submitted is what the controller ran and
    # completed, one job per planned job (no retries), each with its SLURM log.
    submitted = {slurm_id: Path(log) for _, slurm_id, log in SUBMITTED.findall(output)}
    assert len(submitted) == sum(planned.values()), output[-3000:]
    jobs = slurm_run.cluster.jobs()
    names = {job["name"] for job in jobs if job["id"] in submitted}
    assert len(names) == 1  # the executor names every job of a run by the run's id
    ran = {job["id"]: job for job in jobs if job["name"] in names}
    assert set(ran) == set(submitted)
    assert {job["state"] for job in ran.values()} == {"COMPLETED"}, ran
    comments = [job["comment"] for job in ran.values()]  # "rule_<rule>[_wildcards_<values>]"
    assert len(set(comments)) == len(comments)
    rules = Counter(re.fullmatch(r"rule_(.+?)(?:_wildcards_.*)?", comment)[1] for comment in comments)
    assert rules == planned
    for log in submitted.values():
        assert log.is_file() and log.stat().st_size > 0, log
        assert log.is_relative_to(project / ".snakemake" / "slurm_logs")
    slurm_run.stop()  # what follows reads files only

    # The same results as the local run of configs/test.yaml: its rows of the tables and every
    # checkpoint's weights.
    slurm = pd.read_csv(project / "results/test/tables/runs.csv").sort_values("run", ignore_index=True)
    assert set(slurm["run"]) == set(runs_of_test_config(project / config))
    local = pd.read_csv(local_test_run / "results/test/tables/runs.csv")
    local = local[local["run"].isin(slurm["run"])].sort_values("run", ignore_index=True)
    floors_only = sorted(set(local) - set(slurm))  # columns only the floors fill (the pixel side)
    assert local[floors_only].isna().all().all(), floors_only
    pd.testing.assert_frame_equal(slurm, local[list(slurm.columns)], check_exact=True, check_dtype=False)  # ints, as floats beside the floors' NaN
    slurm_weights, local_weights = fingerprints(project), fingerprints(local_test_run)
    assert slurm_weights == {run: local_weights[run] for run in slurm_weights}
    assert len(slurm_weights) == (slurm["method"] != plan.RAW_PIXELS).sum()  # every network's checkpoint
