"""The cost tables (siamcollapse.reporting.costs) from benchmark files in Snakemake's format;
tests/workflow/test_shared_run.py reads the ones a real Snakemake run writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from siamcollapse.reporting.costs import COST_COLUMNS, cost_markdown, cost_summary, read_benchmarks

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def benchmark(root: Path, family: str, job: str, wall: float, rss: float | str, cpu: float | str) -> None:
    (root / family).mkdir(parents=True, exist_ok=True)
    (root / family / f"{job}.tsv").write_text(f"{HEADER}\n{wall}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def test_every_benchmark_is_a_row_and_families_are_summed(tmp_path: Path):
    jobs = [("pretrain", "a", 100.0, 900.0, 180.0), ("pretrain", "b", 60.0, 700.0, 110.0),
            ("knn", "a", 2.0, 300.0, 1.5)]
    for job in jobs:
        benchmark(tmp_path, *job)
    costs = read_benchmarks(tmp_path)
    assert list(costs.columns) == COST_COLUMNS
    assert sorted(costs.itertuples(index=False, name=None)) == sorted(
        (family, job, wall, cpu, rss) for family, job, wall, rss, cpu in jobs)
    summary = cost_summary(costs).set_index("family")
    assert list(summary.index) == ["pretrain", "knn"]  # by total wall time
    assert summary.loc["pretrain", "jobs"] == 2 and summary.loc["pretrain", "wall_s"] == pytest.approx(160.0)
    assert summary.loc["pretrain", "max_wall_s"] == 100.0 and summary.loc["pretrain", "max_rss_mb"] == 900.0
    assert summary.loc["pretrain", "cpu_s"] == pytest.approx(290.0)
    page = cost_markdown(costs, tmp_path)
    assert "| pretrain | 2 | 160.0 | 80.0 | 100.0 | 290.0 | 900 |" in page and "3 jobs" in page


def test_memory_a_job_ended_before_it_was_sampled_is_not_measured_never_zero(tmp_path: Path):
    benchmark(tmp_path, "knn", "sampled", 2.0, 300.0, 1.5)
    benchmark(tmp_path, "knn", "shell-only", 0.4, 0.0, 0.0)  # the sample saw only the job's shell
    benchmark(tmp_path, "make_subset", "gone", 0.3, "NA", "NA")  # Snakemake: exited before the first sample
    costs = read_benchmarks(tmp_path).set_index("job")
    assert costs.loc["sampled", "max_rss_mb"] == 300.0
    assert costs.loc[["shell-only", "gone"], "max_rss_mb"].isna().all()
    summary = cost_summary(costs.reset_index()).set_index("family")
    assert summary.loc["knn", "max_rss_mb"] == 300.0  # the largest measured job
    page = cost_markdown(costs.reset_index(), tmp_path)
    assert "| make_subset | 1 | 0.3 | 0.3 | 0.3 | 0.0 | not measured |" in page, page


def test_a_malformed_benchmark_is_named_and_left_out(tmp_path: Path):
    benchmark(tmp_path, "knn", "good", 2.0, 300.0, 1.5)
    (tmp_path / "knn" / "cut.tsv").write_text(HEADER + "\n")  # a header only
    with pytest.warns(UserWarning, match=r"cut\.tsv: not a Snakemake benchmark file"):
        costs = read_benchmarks(tmp_path)
    assert costs["job"].tolist() == ["good"]


def test_without_benchmarks_the_tables_are_empty_and_say_why(tmp_path: Path):
    for root in (None, tmp_path / "missing"):
        costs = read_benchmarks(root)
        assert costs.empty and list(costs.columns) == COST_COLUMNS
        assert "dvc repro" in cost_markdown(costs, root)
    assert isinstance(cost_summary(pd.DataFrame(columns=COST_COLUMNS)), pd.DataFrame)
