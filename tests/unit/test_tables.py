"""Run tables, their Markdown summary and spectrum files (siamcollapse.reporting.tables)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siamcollapse.reporting import tables
from siamcollapse.reporting.tables import (
    OPTIONAL_COLUMNS,
    RUN_COLUMNS,
    build_run_table,
    finding_line,
    read_run_table,
    run_table_markdown,
    write_run_table,
)
from siamcollapse.spectrum_csv import read_spectrum, write_spectrum
from tests.helpers import collapse_runs


def _record(run: str, fraction: float, auc: float, linear: float, **extra) -> dict:
    method = "random-init" if run.startswith("random") else "simsiam"
    base = {
        "run": run,
        "method": method,
        "arch": "resnet18",
        "dataset_fraction": fraction,
        "strategy": "random",
        "auc": auc,
        "linear_top1": linear,
        "knn_top1": linear - 4.0,
    }
    return {**base, **extra}


@pytest.fixture
def records() -> list[dict]:
    """Deliberately unsorted, with the baseline first and an extra column; ss-1 has every label-free
    metric, the others only the AUC and the effective rank (records from before the others)."""
    return [
        _record("random-r18", 1.0, 0.93456, 12.04, effective_rank=20.0, linear_epochs=3),
        _record("ss-100", 1.0, 0.85775, 66.26, effective_rank=165.6),
        _record("ss-1", 0.01, 0.60976, 30.04, effective_rank=465.2, rankme=465.23, alpha_req=0.8163, nesum=120.46,
                lidar=88.04),
        _record("ss-10", 0.1, 0.84492, 52.0, effective_rank=186.5),
        _record("ss-half", 0.005, 0.55, 21.0, effective_rank=480.0),
    ]


@pytest.fixture
def table(records: list[dict]) -> pd.DataFrame:
    return build_run_table(records)


# --------------------------------------------------------------------------- build


def test_build_sorts_by_fraction_with_random_init_last(table: pd.DataFrame) -> None:
    assert table["run"].tolist() == ["ss-half", "ss-1", "ss-10", "ss-100", "random-r18"]
    assert list(table.columns) == [*RUN_COLUMNS, *OPTIONAL_COLUMNS, *tables.LABEL_FREE_COLUMNS, "linear_epochs"]
    assert table.index.tolist() == list(range(5))


def test_build_sorts_groups_before_fraction(records: list[dict]) -> None:
    records.append({**_record("ss-50-r50", 0.5, 0.8, 70.0), "arch": "resnet50"})
    records.append({**_record("ss-1-r50", 0.01, 0.6, 40.0), "arch": "resnet50"})
    runs = build_run_table(records)["run"].tolist()
    assert runs == ["ss-half", "ss-1", "ss-10", "ss-100", "ss-1-r50", "ss-50-r50", "random-r18"]


@pytest.mark.parametrize("key", [k for k in RUN_COLUMNS if k != "run"])
def test_missing_key_error_names_run_and_key(records: list[dict], key: str) -> None:
    del records[2][key]
    with pytest.raises(ValueError, match=rf"'ss-1'.*'{key}'"):
        build_run_table(records)


def test_missing_run_key_names_record_position(records: list[dict]) -> None:
    del records[3]["run"]
    with pytest.raises(ValueError, match=r"#3.*'run'"):
        build_run_table(records)


def test_duplicate_run_names_rejected(records: list[dict]) -> None:
    records.append(_record("ss-1", 0.02, 0.7, 40.0))
    with pytest.raises(ValueError, match="ss-1"):
        build_run_table(records)


@pytest.mark.parametrize("fraction", [0.0, 1.5, float("nan")])
def test_fraction_outside_unit_interval_rejected(records: list[dict], fraction: float) -> None:
    records[1]["dataset_fraction"] = fraction
    with pytest.raises(ValueError, match="dataset_fraction"):
        build_run_table(records)


def test_records_without_the_newer_keys_read_as_null(records: list[dict]) -> None:
    """Old run.json files lack group, warmup, teacher...: the table has the columns, all null."""
    records[1].update(group="ss", warmup_epochs=10, teacher_method=None)
    table = build_run_table(records)
    row = table.set_index("run")
    assert row.at["ss-100", "warmup_epochs"] == 10.0 and row.at["ss-100", "group"] == "ss"
    for column in OPTIONAL_COLUMNS:
        assert pd.isna(row.at["ss-1", column]), column
    assert pd.isna(row.at["ss-100", "teacher_method"])


def test_records_without_the_label_free_metrics_read_as_nan(records: list[dict]) -> None:
    row = build_run_table(records).set_index("run")
    for column in ("rankme", "alpha_req", "nesum", "lidar"):
        assert np.isnan(row.at["ss-100", column]) and row[column].dtype == float, column
    assert row.at["ss-1", "rankme"] == 465.23 and row.at["ss-100", "effective_rank"] == 165.6
    records[2]["lidar"] = None  # a summary with LiDAR undefined (JSON null)
    assert np.isnan(build_run_table(records).set_index("run").at["ss-1", "lidar"])


def test_runs_differing_only_in_warmup_or_switch_stay_apart_in_order(records: list[dict]) -> None:
    records.append({**_record("ss-100-wu", 1.0, 0.8, 60.0), "warmup_epochs": 10})
    records.append({**_record("ss-1-wu", 0.01, 0.6, 30.0), "warmup_epochs": 10})
    runs = build_run_table(records)["run"].tolist()
    # no warmup (0 or missing) first, then the warmup runs, each by fraction
    assert runs.index("ss-100") < runs.index("ss-1-wu") < runs.index("ss-100-wu") < runs.index("random-r18")


# --------------------------------------------------------------------------- CSV + Markdown


def test_csv_round_trip(table: pd.DataFrame, tmp_path: Path) -> None:
    write_run_table(table, tmp_path / "runs.csv", tmp_path / "runs.md")
    back = read_run_table(tmp_path / "runs.csv")
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back["auc"].tolist() == table["auc"].tolist()  # exact floats
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv", "runs.md"]  # no temp


def test_markdown_has_title_notes_table_and_every_run(table: pd.DataFrame, tmp_path: Path) -> None:
    write_run_table(table, tmp_path / "runs.csv", tmp_path / "runs.md")
    text = (tmp_path / "runs.md").read_text()
    assert text.startswith("# ")
    assert "Eq. 2" in text and "lower = less collapse" in text
    assert " at k = " not in text  # no k recorded: none is claimed
    write_run_table(table.assign(knn_k=50), tmp_path / "runs.csv", tmp_path / "runs.md")
    assert "at k = 50" in (tmp_path / "runs.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| run"))
    assert "AUC" in header and "linear top-1 (%)" in header and "kNN top-1 (%)" in header
    rows = [line for line in text.splitlines() if line.startswith("| ") and line != header]
    assert len(rows) == len(table)
    for run, row in zip(table["run"], rows):
        assert row.startswith(f"| {run} |")


def _row(markdown: str, run: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {run} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_markdown_numbers_formatted(table: pd.DataFrame) -> None:
    text = run_table_markdown(table)
    # run, method, arch, strategy, data, n (seeds), AUC, RankMe, α-ReQ, NESum, LiDAR, linear, kNN
    assert _row(text, "ss-1")[4:] == ["1%", "1", "0.610", "465.2", "0.82", "120.5", "88.0", "30.0", "26.0"]
    assert _row(text, "ss-half")[4:7] == ["0.5%", "1", "0.550"]
    # a record from before RankMe, α-ReQ, NESum and LiDAR: missing, not zero
    assert _row(text, "ss-100")[4:] == ["100%", "1", "0.858", "—", "—", "—", "—", "66.3", "62.3"]
    assert _row(text, "random-r18")[4] == "—"  # untrained: no data fraction
    assert re.search(r"^\|---\|.*\|---:\|$", text, flags=re.MULTILINE)  # numbers right-aligned


@pytest.mark.parametrize(("name", "reference", "direction"), [
    ("AUC", "Li et al. 2022", "lower = less collapse"),
    ("RankMe", "Garrido et al. 2023", "higher = less collapse"),
    ("α-ReQ", "Agrawal et al. 2022", "lower = less collapse"),
    ("NESum", "He & Ozay 2022", "higher = less collapse"),
    ("LiDAR", "Thilak et al. 2024", "higher = less collapse"),
])
def test_markdown_names_cites_and_orients_every_label_free_metric(table: pd.DataFrame, name, reference,
                                                                  direction) -> None:
    text = run_table_markdown(table)
    header = next(line for line in text.splitlines() if line.startswith("| run"))
    assert f"| {name} |" in header and "eff. rank" not in header  # RankMe stands for it
    note = next(line for line in text.splitlines() if line.startswith(f"- **{name}**:"))
    assert reference in note and note.endswith(f"; {direction}.")
    rankme = next(line for line in text.splitlines() if line.startswith("- **RankMe**:"))
    assert "effective rank" in rankme and "eps" in rankme


def test_markdown_escapes_pipes_and_shows_missing_values(records: list[dict]) -> None:
    records[1]["run"] = "odd|name"
    records[1]["linear_top1"] = float("nan")
    text = run_table_markdown(build_run_table(records))
    assert "| odd\\|name |" in text
    assert "—" in next(line for line in text.splitlines() if "odd" in line)


def test_markdown_shows_warmup_switch_and_teacher_only_when_some_run_has_them(records: list[dict]) -> None:
    plain = run_table_markdown(build_run_table(records))
    assert "warmup" not in plain and "hybrid K" not in plain and "teacher" not in plain
    records[1].update(warmup_epochs=10)
    records[2].update(switch_epoch=5, teacher="big-teacher")
    text = run_table_markdown(build_run_table(records))
    header = next(line for line in text.splitlines() if line.startswith("| run"))
    assert "warmup (epochs)" in header and "hybrid K" in header and "| teacher |" in header
    assert "**teacher**" in text  # the note explaining the new columns
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    assert _row(text, "ss-100")[columns.index("warmup (epochs)")] == "10"
    assert _row(text, "ss-1")[columns.index("hybrid K")] == "5"
    assert _row(text, "ss-1")[columns.index("teacher")] == "big-teacher"
    assert _row(text, "ss-10")[columns.index("warmup (epochs)")] == "—"


def test_footer_is_the_last_line(table: pd.DataFrame, tmp_path: Path) -> None:
    write_run_table(table, tmp_path / "r.csv", tmp_path / "r.md", footer="See also: other.md.")
    lines = (tmp_path / "r.md").read_text().splitlines()
    assert lines[-1] == "See also: other.md." and lines[-3].startswith("**Finding:**")


def test_markdown_does_not_need_tabulate(table: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tabulate", None)  # any import of it would fail
    write_run_table(table, tmp_path / "r.csv", tmp_path / "r.md")
    assert "| ss-1 |" in (tmp_path / "r.md").read_text()


# --------------------------------------------------------------------------- finding line


def test_finding_line_reports_computed_correlation_and_gain(table: pd.DataFrame) -> None:
    trained = table[table["method"] != "random-init"]
    r = np.corrcoef(trained["auc"], trained["linear_top1"])[0, 1]
    line = finding_line(table)
    assert line.startswith("**Finding:**")
    assert f"r = {r:+.2f}" in line and "4 trained runs" in line
    assert "ss-100" in line and f"{66.26 - 12.04:+.1f} points" in line


def test_finding_line_follows_the_data(records: list[dict]) -> None:
    before = finding_line(build_run_table(records))
    for rec in records:  # reverse the accuracy ranking of the trained runs
        if rec["method"] != "random-init":
            rec["linear_top1"] = 100.0 - rec["linear_top1"]
    after = finding_line(build_run_table(records))
    assert before != after
    assert "Pearson r = +" in before and "Pearson r = -" in after  # the sign follows the data
    assert "goes with" not in before + after  # no claim the point estimate cannot carry
    assert "ss-half" in after  # the new best run


def test_finding_line_with_too_few_runs(records: list[dict]) -> None:
    line = finding_line(build_run_table(records[1:3]))  # two trained runs, no baseline
    assert "too few" in line


def test_spearman_handles_ties() -> None:
    corr = tables.correlation([1, 2, 2, 3], [10, 20, 20, 40])
    assert corr is not None and corr.spearman == pytest.approx(1.0)
    assert tables.correlation([1, 1, 1], [1, 2, 3]) is None


# --------------------------------------------------------------------------- spectra


def test_spectrum_round_trip_exact(tmp_path: Path) -> None:
    values = np.sort(np.random.default_rng(0).gamma(2.0, 3.0, 512).astype(np.float32))[::-1]
    write_spectrum(tmp_path / "s.csv", values)
    back = read_spectrum(tmp_path / "s.csv")
    assert back.dtype == np.float64 and back.shape == (512,)
    np.testing.assert_array_equal(back.astype(np.float32), values)
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table["index"]) == list(range(1, 513))
    np.testing.assert_allclose(table["normalized_singular_value"], back / back[0])
    np.testing.assert_allclose(table["cumulative_explained_variance"], np.cumsum(back) / back.sum())
    assert table["cumulative_explained_variance"].iloc[-1] == pytest.approx(1.0)
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]


def test_spectrum_round_trip_float64_exact(tmp_path: Path) -> None:
    values = np.array([470.9755554199219, 1 / 3, 1e-12, 0.0])
    write_spectrum(tmp_path / "s.csv", values)
    np.testing.assert_array_equal(read_spectrum(tmp_path / "s.csv"), values)


def test_read_spectrum_rejects_wrong_header(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("value\n1.0\n")
    with pytest.raises(ValueError, match="singular_value"):
        read_spectrum(tmp_path / "bad.csv")


@pytest.mark.parametrize("values", [[1.0, float("nan")], [1.0, -2.0], []])
def test_write_spectrum_rejects_invalid_values(tmp_path: Path, values: list[float]) -> None:
    with pytest.raises(ValueError):
        write_spectrum(tmp_path / "s.csv", values)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- seeds and floors


def _seeded(records: list[dict]) -> list[dict]:
    """ss-100 as two seeds of one setting, the random-init floor as three, plus raw pixels."""
    out = [r for r in records if r["run"] not in ("ss-100", "random-r18")]
    for seed, (linear, auc) in enumerate([(60.0, 0.85), (64.0, 0.87)]):
        out.append(_record(f"ss-100-s{seed}", 1.0, auc, linear, seed=seed, seed_group="ss-100", num_classes=10))
    for seed, linear in enumerate([17.0, 18.0, 19.0]):
        out.append(_record(f"random-r18-s{seed}", 1.0, 0.9, linear, seed=seed, seed_group="random-r18", num_classes=10))
    out.append({**_record("raw-pixels", None, 0.7, 11.25, num_classes=10), "method": "raw-pixels", "arch": "raw-pixels"})
    return out


def test_seeds_of_a_setting_fold_into_mean_sd_and_n(records: list[dict]) -> None:
    table = build_run_table(_seeded(records))
    assert {"seed", "seed_group"} <= set(table.columns)  # runs.csv keeps one row per seed
    summary = tables.summarise_seeds(table)
    row = summary.set_index("run").loc["ss-100"]
    assert row["linear_top1"] == pytest.approx(62.0) and row["linear_top1_sd"] == pytest.approx(np.std([60, 64], ddof=1))
    assert row["n_seeds"] == 2 and row["seeds"] == "0, 1"
    assert np.isnan(summary.set_index("run").loc["ss-1", "linear_top1_sd"])  # one run: no sd
    text = run_table_markdown(table)
    assert _row(text, "ss-100")[4:7] == ["100%", "2", "0, 1"]
    assert "62.0 ± 2.8" in _row(text, "ss-100")
    assert not any(line.startswith("| ss-100-s0 |") for line in text.splitlines())


def test_seeds_average_the_label_free_metrics_too(records: list[dict]) -> None:
    seeded = _seeded(records)
    for record, rankme in zip((r for r in seeded if r["run"].startswith("ss-100-s")), (300.0, 310.0)):
        record.update(rankme=rankme, nesum=float(rankme) / 10)
    row = tables.summarise_seeds(build_run_table(seeded)).set_index("run").loc["ss-100"]
    assert row["rankme"] == pytest.approx(305.0) and row["rankme_sd"] == pytest.approx(np.std([300, 310], ddof=1))
    assert row["nesum"] == pytest.approx(30.5) and np.isnan(row["lidar"])  # no seed has one
    assert "305.0 ± 7.1" in _row(run_table_markdown(build_run_table(seeded)), "ss-100")


def test_a_students_teacher_is_its_teachers_seed_group(records: list[dict]) -> None:
    seeded = _seeded(records)
    seeded += [_record(f"st-s{s}", 1.0, 0.8, 40.0 + s, seed=s, seed_group="st", teacher=f"ss-100-s{s}") for s in (0, 1)]
    summary = tables.summarise_seeds(build_run_table(seeded)).set_index("run")
    assert summary.loc["st", "teacher"] == "ss-100" and summary.loc["st", "n_seeds"] == 2


def test_the_floors_line_shows_chance_random_init_and_raw_pixels(records: list[dict]) -> None:
    table = build_run_table(_seeded(records))
    line = tables.floors_line(table)
    assert "chance 10.0 %" in line
    assert "random init resnet18: linear 18.0 ± 1.0 (n=3)" in line
    assert "raw pixels: linear 11.2," in line  # a single run: no sd, no n
    assert line in run_table_markdown(table)
    # the floors are untrained: no data fraction, and not part of the trained trend
    assert not tables.is_baseline(table[table["run"] == "ss-1"]).any()
    assert tables.is_baseline(table[table["run"] == "raw-pixels"]).all()


def test_the_floors_line_says_when_a_floor_is_missing(table: pd.DataFrame) -> None:
    line = tables.floors_line(table)
    assert "chance —" in line and "raw pixels: not run" in line


def test_the_finding_gives_the_spread_of_the_best_setting_and_the_floor(records: list[dict]) -> None:
    seeded = [r for r in _seeded(records) if r["run"] != "ss-1"]  # ss-100 (62.0 ± 2.8, n=2) is then the best
    line = finding_line(build_run_table(seeded))
    assert "ss-100, 100% data, mean of 2 seeds" in line
    assert "62.0 ± 2.8 (n=2) % vs 18.0 ± 1.0 (n=3) %" in line and "seed noise" not in line
    assert "seed noise" in finding_line(build_run_table(records))  # single runs: say the gap may be noise


# --------------------------------------------------------------------------- metrics table


RUN_INFO = {"run": "ss-100-s1", "method": "simsiam", "arch": "resnet18", "seed": 1, "seed_group": "ss-100",
            "dataset_fraction": 1.0}


def test_metrics_rows_of_a_summary_with_variants() -> None:
    values = collapse_runs.metrics_of(40.0)
    summary = collapse_runs.spectrum_summary(values)
    summary["variants"]["val_l2"]["alpha_req"] = None  # undefined there
    frame = tables.metrics_table(tables.spectrum_metric_rows(RUN_INFO, summary))
    assert list(frame.columns) == tables.METRICS_TABLE_COLUMNS
    assert len(frame) == 4 * 5 + 2  # four spectra x five metrics, then LiDAR of the raw and l2 features
    assert (frame[["run", "method", "arch", "seed", "seed_group"]] == ["ss-100-s1", "simsiam", "resnet18", 1,
                                                                        "ss-100"]).all().all()
    cell = frame.set_index(["split", "features", "metric"])["value"]
    for variant, offset in collapse_runs.VARIANT_OFFSETS.items():
        split, features = variant.split("_")
        for metric in ("auc", "rankme", "nesum", "effective_rank"):
            assert cell[(split, features, metric)] == pytest.approx(values[metric] + offset), (variant, metric)
    assert np.isnan(cell[("val", "l2", "alpha_req")])  # null -> NaN, the row kept
    assert cell[("val", "raw", "alpha_req")] == pytest.approx(values["alpha_req"] + 0.02)
    assert cell[("train", "raw", "lidar")] == values["lidar"] and cell[("train", "l2", "lidar")] == values["lidar"] + 1
    assert not frame["metric"].isin(["dims", "top_singular_value", "lidar_l2", "lidar_images"]).any()


def test_metrics_rows_of_an_older_summary_are_its_headline() -> None:
    old = {"auc": 0.7, "effective_rank": 80.0, "dims": 512, "top_singular_value": 3.0, "split": "train"}
    frame = tables.metrics_table(tables.spectrum_metric_rows(RUN_INFO, old))
    assert frame[["split", "features", "metric"]].values.tolist() == [["train", "raw", "auc"],
                                                                      ["train", "raw", "effective_rank"]]
    assert frame["value"].tolist() == [0.7, 80.0]
    assert tables.metrics_table([]).columns.tolist() == tables.METRICS_TABLE_COLUMNS
