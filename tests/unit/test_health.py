"""The health column: a blown-up or collapsed run is flagged in runs.csv, marked and footnoted
in runs.md and the paper-shaped tables, and ringed in the figures."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from siamcollapse.reporting import health
from siamcollapse.reporting.paper import write_result_tables
from siamcollapse.reporting.plots import mark_unhealthy
from siamcollapse.reporting.tables import build_run_table, run_table_markdown

THRESHOLDS = {"diverged_scale": 100, "collapsed_z_std": 0.2, "collapsed_effective_rank": 2}


def record(run, method="simsiam", top=20.0, z_std=0.044, rank=40.0, **extra):
    row = {"run": run, "method": method, "arch": "resnet18-w32", "dataset_fraction": None if method == "random-init"
           else 1.0, "strategy": "iid", "auc": 0.85, "linear_top1": 70.0, "knn_top1": 60.0, "seed_group": run,
           "top_singular_value": top, "z_std": None if method == "random-init" else z_std,
           "z_std_healthy": None if method == "random-init" else 0.0442, "effective_rank": rank, **extra}
    row["non_finite"] = health.non_finite_keys(row)
    return row


def assessed(*records):
    return health.assess(build_run_table([record("random-init-resnet18-w32", "random-init", top=10.0), *records]),
                         THRESHOLDS)


def states(table):
    return dict(zip(table["run"], table[health.HEALTH]))


def test_each_rule_flags_its_run_and_says_why():
    table = assessed(record("fine"), record("blown-up", top=40_545.0), record("flat", z_std=0.001),
                     record("rank-one", rank=1.2), record("nan-auc", auc=math.nan))
    assert states(table) == {"random-init-resnet18-w32": "ok", "fine": "ok", "blown-up": "diverged",
                             "flat": "collapsed", "rank-one": "collapsed", "nan-auc": "diverged"}
    reasons = dict(zip(table["run"], table[health.HEALTH_REASON]))
    assert "4054x the untrained floor's (limit 100x)" in reasons["blown-up"]
    assert "z_std 0.001" in reasons["flat"] and "effective rank 1.20" in reasons["rank-one"]
    assert reasons["nan-auc"] == "not finite: auc"


def test_thresholds_come_from_the_config():
    loose = {**THRESHOLDS, "diverged_scale": 10_000}
    table = health.assess(build_run_table([record("random-init", "random-init", top=10.0),
                                           record("blown-up", top=40_545.0)]), loose)
    assert states(table)["blown-up"] == "ok"


def test_without_a_floor_the_scale_rule_has_no_reference():
    table = health.assess(build_run_table([record("blown-up", top=40_545.0)]), THRESHOLDS)
    assert states(table) == {"blown-up": "ok"}


def test_runs_md_marks_the_setting_and_footnotes_the_run():
    text = run_table_markdown(assessed(record("fine"), record("flat", z_std=0.001)))
    assert "| flat † |" in text and "| fine |" in text
    assert "- `flat` **collapsed**: z_std 0.001" in text


def test_a_healthy_experiment_has_no_footnote():
    assert health.UNHEALTHY_MARK not in run_table_markdown(assessed(record("fine")))


def test_the_paper_shaped_tables_footnote_unhealthy_runs(tmp_path):
    write_result_tables(assessed(record("fine"), record("blown-up", top=40_545.0)), tmp_path)
    assert "`blown-up` **diverged**" in (tmp_path / "training_methods.md").read_text()
    assert "diverged" in (tmp_path / "runs.csv").read_text()


@pytest.mark.parametrize("unhealthy_runs", [0, 1])
def test_figures_ring_each_unhealthy_run(unhealthy_runs):
    runs = [record("fine"), *([record("flat", z_std=0.001)] if unhealthy_runs else [])]
    fig, ax = plt.subplots()
    handles = mark_unhealthy(ax, assessed(*runs), "auc", "linear_top1")
    assert len(handles) == unhealthy_runs and len(ax.collections) == unhealthy_runs
    plt.close(fig)
