"""`siamcollapse estimate-compute`: a target config's pretraining seconds from a measured run's
costs.csv, by the arithmetic of its docstring (pooled seconds per pixel-view, times the planned
pixel-views); an architecture without a measured run stays "not measured"; bad input is named."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest
import yaml

from siamcollapse import cli
from siamcollapse.config import load_experiment
from siamcollapse.errors import UserInputError
from siamcollapse.reporting import compute_estimate as ce
from siamcollapse.reporting.costs import COST_COLUMNS

MEASURED_PRETRAIN = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 4}
MEASURED = {
    "dataset": {"source": "embedded", "root": "data/embedded", "image_size": 16},
    "model": {"arch": "resnet18", "width": 8},
    "pretrain": MEASURED_PRETRAIN,
    "methods": {"mocov3": {"warmup_epochs": 1}},
    "runs": {
        "sim": {"fractions": [1.0]},
        "single": {"fractions": [1.0], "pretrain": {"strategy": "single-pass"}},
        "hyb": {"fractions": [1.0], "pretrain": {"strategy": "hybrid", "switch_epoch": 1, "hybrid_from": "single"}},
        "moco": {"fractions": [1.0], "pretrain": {"method": "mocov3"}},
    },
    "random_init_baseline": True,
}
# (family, job, wall s, CPU s, epochs it trains); the random-init and kNN jobs train nothing
COSTS = [("pretrain", "sim-100pct", 12.0, 10.0, 2), ("pretrain_segment", "single-100pct-epoch1", 3.0, 2.5, 1),
         ("pretrain", "single-100pct", 4.0, 3.5, 1), ("pretrain", "hyb-100pct", 5.0, 4.0, 1),
         ("pretrain", "moco-100pct", 40.0, 30.0, 2), ("random_init", "random-init-resnet18-w8", 1.0, 1.0, 0),
         ("knn", "sim-100pct", 2.0, 2.0, 0)]
TARGET = {
    "dataset": {"source": "imagefolder", "root": "no/such/imagenet", "image_size": 32},
    "model": {"arch": "resnet18", "width": 8},
    "pretrain": {"epochs": 10, "batch_size": 8},
    "runs": {
        "same": {"fractions": [0.5, 1.0]},
        "wide": {"fractions": [1.0], "model": {"width": 64}},
        "vit": {"fractions": [1.0], "model": {"arch": "vit_small", "patch_size": 16}},
    },
    "distillations": {"student": {"teacher": "same-100pct", "model": {"arch": "resnet18"}}},
}
TRAIN_IMAGES = 100


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))  # runs in config order
    return path


def write_costs(path: Path, rows=COSTS) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COST_COLUMNS)
        writer.writerows([(family, job, wall, cpu, 500.0) for family, job, wall, cpu, _ in rows])
    return path


def pixel_views(epochs: int, steps_per_epoch: int, batch: int, image_size: int) -> int:
    return epochs * steps_per_epoch * batch * 2 * image_size ** 2


def measured_rate(runs: tuple[str, ...], column: int) -> float:
    """Seconds (``column`` 2: wall, 3: CPU) per pixel-view pooled over the jobs of ``runs``."""
    jobs = [row for row in COSTS if row[0] != "knn" and row[1].startswith(runs)]
    views = sum(pixel_views(row[4], MEASURED_PRETRAIN["steps_per_epoch"], MEASURED_PRETRAIN["batch_size"], 16)
                for row in jobs)
    return sum(row[column] for row in jobs) / views


def estimate(tmp_path: Path, rows=COSTS, train_images: int | None = TRAIN_IMAGES) -> str:
    measured = load_experiment([write_yaml(tmp_path / "measured.yaml", MEASURED)])
    target = load_experiment([write_yaml(tmp_path / "target.yaml", TARGET)])
    return ce.estimate_page(write_costs(tmp_path / "costs.csv", rows), ce.Experiment(measured, "measured.yaml", None),
                            ce.Experiment(target, "target.yaml", train_images), machine="a test machine")


def table_row(page: str, group: str) -> list[str]:
    line = next(line for line in page.splitlines() if line.startswith(f"| {group} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_estimate_is_the_measured_rate_times_the_planned_pixel_views(tmp_path):
    page = estimate(tmp_path)
    steps = TARGET["pretrain"]["epochs"] * math.ceil(TRAIN_IMAGES / TARGET["pretrain"]["batch_size"])
    views = pixel_views(TARGET["pretrain"]["epochs"], steps // TARGET["pretrain"]["epochs"], 8, 32)
    same = table_row(page, "same")  # same model and method: the SimSiam runs, not MoCo-v3's
    simsiam = ("sim-", "single-", "hyb-")
    assert same[1:6] == ["2", "resnet18-w8", "simsiam", f"{2 * steps:,}", f"{2 * steps * 8 * 2:,}"]
    assert same[6:8] == [f"{measured_rate(simsiam, 3) * 2 * views:,.0f}", f"{measured_rate(simsiam, 2) * 2 * views:,.0f}"]
    assert same[9] == "sim-100pct, single-100pct, hyb-100pct" and same[10].startswith("same model and method")
    wide = table_row(page, "wide")  # another width of the architecture: said in the basis
    assert wide[7] == f"{measured_rate(simsiam, 2) * views:,.0f}" and "other model (target resnet18)" in wide[10]
    assert "measured resnet18-w8" in wide[10]
    assert "on: a test machine" in page and "CPUs only" in page and "16² measured, 32² planned" in page


def test_an_architecture_without_a_measured_run_is_not_measured(tmp_path):
    page = estimate(tmp_path)
    vit = table_row(page, "vit")
    assert vit[6:10] == [ce.NOT_MEASURED] * 4 and vit[10] == "no measured run of vit_small"
    student = table_row(page, "student")  # its teacher's forward pass is part of its cost: no pretraining rate
    assert student[6] == ce.NOT_MEASURED and student[10] == "no measured student of resnet18 from a resnet18 teacher"
    assert "Estimated for 2 of 4 groups" in page and "Not measured (2): vit, student." in page


def test_every_training_job_of_a_run_counts_and_a_hybrid_trains_after_its_switch(tmp_path):
    runs = ce.measured_runs(ce.read_costs(write_costs(tmp_path / "costs.csv")), load_experiment(
        [write_yaml(tmp_path / "m.yaml", MEASURED)]), None, "m.yaml", tmp_path / "costs.csv")
    by_name = {m.run.name: m for m in runs}
    assert set(by_name) == {"sim-100pct", "single-100pct", "hyb-100pct", "moco-100pct"}
    assert by_name["single-100pct"].wall == 3.0 + 4.0
    assert by_name["hyb-100pct"].pixel_views == pixel_views(1, 3, 4, 16) == by_name["sim-100pct"].pixel_views / 2


@pytest.mark.parametrize("rows,words", [
    ([row for row in COSTS if row[0] == "knn"], "no pretrain rows"),
    ([row for row in COSTS if row[1] != "hyb-100pct"], "no row for 1 training jobs that measured.yaml plans (pretrain hyb-100pct)"),
])
def test_costs_that_do_not_cover_the_measured_runs_are_an_error(tmp_path, rows, words):
    with pytest.raises(UserInputError, match=re.escape(words)):
        estimate(tmp_path, rows)


def test_a_target_whose_steps_need_its_training_set_size_asks_for_it(tmp_path):
    with pytest.raises(UserInputError, match=r"target.yaml: key 'pretrain.steps_per_epoch'.*--train-images N"):
        estimate(tmp_path, train_images=None)


def run_cli(tmp_path: Path, *extra: str) -> int:
    return cli.main(["estimate-compute", "--costs", str(tmp_path / "costs.csv"),
                     "--measured-config", str(write_yaml(tmp_path / "measured.yaml", MEASURED)),
                     "--target-config", str(write_yaml(tmp_path / "target.yaml", TARGET)), *extra])


def test_the_command_prints_the_page_and_writes_it(tmp_path, capsys):
    write_costs(tmp_path / "costs.csv")
    out = tmp_path / "estimate.md"
    assert run_cli(tmp_path, "--train-images", str(TRAIN_IMAGES), "--machine", "box", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text() and "| same | 2 |" in printed and "on: box." in printed


def test_the_command_names_a_missing_costs_file(tmp_path, capsys):
    assert run_cli(tmp_path, "--train-images", str(TRAIN_IMAGES)) == 2
    assert f"--costs {tmp_path / 'costs.csv'}: no such file" in capsys.readouterr().err


def test_a_file_that_is_not_a_cost_table_is_named(tmp_path):
    (tmp_path / "costs.csv").write_text("run,auc\na,0.5\n")
    with pytest.raises(UserInputError, match="not a cost table, it lacks the columns family, job"):
        ce.read_costs(tmp_path / "costs.csv")
