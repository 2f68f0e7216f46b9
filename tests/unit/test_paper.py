"""Paper-shaped tables, run labels and published numbers (siamcollapse.reporting.paper), and
the collect and plot stages end to end on fake run directories.

Accuracies in the synthetic records are illustrative and all different, so that a number in
the wrong row or column cannot go unnoticed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from siamcollapse import cli, io
from siamcollapse.layout import COST_TABLE_FILES, FIGURE_NAMES, TABLE_FILES
from siamcollapse.reporting import paper
from siamcollapse.reporting.paper import PAPER_COLUMN, training_label
from siamcollapse.reporting.tables import METRICS_TABLE_COLUMNS, build_run_table
from siamcollapse.spectrum_csv import write_spectrum
from tests.helpers import collapse_runs
from tests.helpers.figures import Capture
from tests.helpers.stage_args import HEALTH_ARGS

NAN = float("nan")


def _record(
    run: str,
    method: str,
    arch: str,
    fraction: float = 1.0,
    strategy: str = "iid",
    top1: float = 50.0,
    **extra: Any,
) -> dict[str, Any]:
    """A run record as the collect stage builds it (run.json plus metrics)."""
    return {
        "run": run,
        "group": run,
        "method": method,
        "arch": arch,
        "dataset_fraction": fraction,
        "strategy": strategy,
        "warmup_epochs": 0,
        "switch_epoch": None,
        "teacher": None,
        "teacher_method": None,
        "teacher_arch": None,
        "auc": 0.5 + top1 / 200,
        "linear_top1": top1,
        "knn_top1": top1 - 3.5,
        **extra,
    }


def _student(run: str, arch: str, teacher: str, teacher_method: str, top1: float, **extra: Any) -> dict[str, Any]:
    return _record(run, "distill", arch, top1=top1, teacher=teacher, teacher_method=teacher_method,
                   teacher_arch="resnet50", **extra)


def _matrix() -> list[dict[str, Any]]:
    """Every method and strategy, a fraction sweep, four archs, students of two teachers, random init."""
    return [
        _record("ss-r18", "simsiam", "resnet18", top1=31.1),
        _record("ss-wu-r18", "simsiam", "resnet18", top1=29.2, warmup_epochs=10),
        _record("ss-sp-r18", "simsiam", "resnet18", strategy="single-pass", top1=44.3),
        _record("ss-cu-r18", "simsiam", "resnet18", strategy="cumulative", top1=40.4),
        _record("ss-la-r18", "simsiam", "resnet18", strategy="last", top1=22.5),
        _record("ss-hy-r18", "simsiam", "resnet18", strategy="hybrid", top1=47.6, switch_epoch=40, epochs=100),
        _record("nn-r18", "nnsiam", "resnet18", top1=34.7),
        _record("moco-r18", "mocov3", "resnet18", top1=45.8, warmup_epochs=10),
        _record("byol-r18", "byol", "resnet18", top1=43.9, warmup_epochs=10),
        _record("ss-r18-10pct", "simsiam", "resnet18", fraction=0.1, top1=41.0),
        _record("ss-r34", "simsiam", "resnet34", top1=17.1),
        _record("ss-wu-r34", "simsiam", "resnet34", top1=36.2, warmup_epochs=10),
        _record("ss-r50", "simsiam", "resnet50", top1=67.3),
        _record("moco-r50", "mocov3", "resnet50", top1=65.4, warmup_epochs=10),
        _record("vit", "simsiam", "vit_small-d6-h3", top1=20.5, warmup_epochs=10),  # the ViT recipe
        _student("st-ss-r18", "resnet18", "ss-r50", "simsiam", 57.6),
        _student("st-ss-r34", "resnet34", "ss-r50", "simsiam", 61.7),
        _student("st-moco-r18", "resnet18", "moco-r50", "mocov3", 55.8),
        _record("random-init-resnet18", "random-init", "resnet18", fraction=NAN, strategy="none", top1=9.9),
    ]


@pytest.fixture
def table() -> pd.DataFrame:
    return build_run_table(_matrix())


def _by_run(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["run"]: r for r in table.to_dict(orient="records")}


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("record", "label"),
    [
        ({"method": "simsiam", "strategy": "iid"}, "SimSiam IID"),
        ({"method": "simsiam", "strategy": "iid", "warmup_epochs": 10}, "SimSiam IID + 10-epoch lr warmup"),
        ({"method": "simsiam", "strategy": "iid", "warmup_epochs": NAN}, "SimSiam IID"),  # older record
        ({"method": "mocov3", "strategy": "iid", "warmup_epochs": 10}, "MoCo-v3 IID"),  # its recipe
        ({"method": "mocov3", "strategy": "iid", "warmup_epochs": 0}, "MoCo-v3 IID without lr warmup"),
        ({"method": "byol", "strategy": "iid", "warmup_epochs": 10.0}, "BYOL IID"),
        ({"method": "nnsiam", "strategy": "iid"}, "NNSiam IID"),
        ({"method": "simsiam", "strategy": "iid", "warmup_epochs": 10, "arch": "vit_small"}, "SimSiam IID"),  # ViT recipe
        ({"method": "simsiam", "strategy": "iid", "warmup_epochs": 10, "arch": "resnet18"},
         "SimSiam IID + 10-epoch lr warmup"),
        ({"method": "simsiam", "strategy": "single-pass"}, "SimSiam single-pass"),
        ({"method": "simsiam", "strategy": "cumulative"}, "SimSiam cumulative"),
        ({"method": "simsiam", "strategy": "last"}, "SimSiam last-k"),
        ({"method": "simsiam", "strategy": "hybrid", "switch_epoch": 5.0}, "SimSiam hybrid (K=5)"),
        ({"method": "simsiam", "strategy": "hybrid"}, "SimSiam hybrid"),
        ({"method": "distill", "strategy": "iid", "teacher_method": "mocov3"}, "distilled from MoCo-v3"),
        ({"method": "distill", "strategy": "iid", "teacher_method": None}, "distilled"),
        ({"method": "random-init", "strategy": "none"}, "random init"),
        ({"method": "newmethod", "strategy": "odd"}, "newmethod odd"),
    ],
)
def test_training_label(record: dict[str, Any], label: str) -> None:
    assert training_label(record) == label


@pytest.mark.parametrize(
    ("arch", "family"),
    [
        ("resnet18", "resnet18"),
        ("resnet18-w32", None),  # narrower than the paper's: another model
        ("resnet34", "resnet34"),
        ("resnet50", "resnet50"),
        ("resnet18-bottleneck-w96", None),
        ("resnet50-basic-w256", None),
        ("vit_small-d6-h3", None),
    ],
)
def test_paper_arch(arch: str, family: str | None) -> None:
    assert paper.paper_arch(arch) == family


def test_archs_sort_by_depth_then_variants() -> None:
    archs = ["vit_small", "resnet50", "resnet18-bottleneck-w96", "resnet34", "resnet18"]
    assert sorted(archs, key=paper.arch_sort_key) == [
        "resnet18", "resnet18-bottleneck-w96", "resnet34", "resnet50", "vit_small",
    ]


# --------------------------------------------------------------------------- training methods x arch


def test_training_methods_puts_every_full_data_run_in_its_cell(table: pd.DataFrame) -> None:
    frame = paper.training_methods_table(table).frame
    assert list(frame.columns) == ["training", "resnet18", "resnet34", "resnet50", "vit_small-d6-h3"]
    cells = frame.set_index("training")
    expected = [r for r in _matrix() if r["dataset_fraction"] == 1.0 and r["method"] not in ("distill", "random-init")]
    for record in expected:
        assert cells.at[training_label(record), record["arch"]] == record["linear_top1"], record["run"]
    assert cells.notna().sum().sum() == len(expected)  # nothing else: no subset, student or random init
    assert frame["training"].iloc[0] == "SimSiam IID"  # IID rows first, as the paper lists them
    labels = frame["training"].tolist()
    assert labels.index("NNSiam IID") < labels.index("SimSiam single-pass") < labels.index("SimSiam hybrid (K=40)")


def test_runs_sharing_a_cell_are_told_apart_by_group(table: pd.DataFrame) -> None:
    twin = _record("ss-r18-lr2", "simsiam", "resnet18", top1=12.3, group="simsiam-lr2")
    records = [{**r, "group": "simsiam"} if r["run"] == "ss-r18" else r for r in _matrix()] + [twin]
    cells = paper.training_methods_table(build_run_table(records)).frame.set_index("training")
    assert cells.at["SimSiam IID [simsiam]", "resnet18"] == 31.1
    assert cells.at["SimSiam IID [simsiam-lr2]", "resnet18"] == 12.3
    assert cells.at["SimSiam IID", "resnet34"] == 17.1  # no clash in that column: plain label


# --------------------------------------------------------------------------- strategies


def test_strategies_table_one_section_per_arch_with_every_metric(table: pd.DataFrame) -> None:
    result = paper.strategies_table(table)
    frame = result.frame
    assert list(frame.columns) == ["arch", "training", "linear top-1 (%)", "kNN top-1 (%)", "AUC"]
    assert list(dict.fromkeys(frame["arch"])) == ["resnet18", "resnet34", "resnet50", "vit_small-d6-h3"]
    rows = frame.set_index(["arch", "training"])
    runs = _by_run(table)
    for run in ["ss-r18", "nn-r18", "ss-hy-r18", "ss-wu-r34", "moco-r50"]:
        record = runs[run]
        row = rows.loc[(record["arch"], training_label(record))]
        assert (row["linear top-1 (%)"], row["kNN top-1 (%)"], row["AUC"]) == (
            record["linear_top1"], record["knn_top1"], record["auc"])
    resnet18 = frame.loc[frame["arch"] == "resnet18", "training"].tolist()
    assert "NNSiam IID" in resnet18 and "SimSiam last-k" in resnet18 and "SimSiam cumulative" in resnet18
    assert not any(label.startswith(("distilled", "random")) for label in frame["training"])
    markdown = result.markdown()
    assert "## resnet18" in markdown and "## vit_small-d6-h3" in markdown
    assert "| SimSiam hybrid (K=40) | 47.6 | 44.1 | 0.738 |" in markdown


# --------------------------------------------------------------------------- distillation


def test_distillation_rows_are_teachers_and_columns_archs(table: pd.DataFrame) -> None:
    frame = paper.distillation_table(table).frame
    assert list(frame.columns) == ["teacher pretraining", "teacher run", "resnet50 teacher", "resnet18 student",
                                   "resnet34 student"]
    assert frame["teacher pretraining"].tolist() == ["SimSiam", "MoCo-v3"]
    rows = frame.set_index("teacher run")
    assert rows.loc["ss-r50", ["resnet50 teacher", "resnet18 student", "resnet34 student"]].tolist() == [
        67.3, 57.6, 61.7]
    assert rows.at["moco-r50", "resnet50 teacher"] == 65.4 and rows.at["moco-r50", "resnet18 student"] == 55.8
    assert math.isnan(rows.at["moco-r50", "resnet34 student"])


def test_distillation_with_a_subset_student_and_a_teacher_not_collected() -> None:
    records = [
        _student("st-a", "resnet18", "gone-teacher", "byol", 30.0),
        _student("st-b", "resnet18", "gone-teacher", "byol", 25.0, dataset_fraction=0.1),
    ]
    frame = paper.distillation_table(build_run_table(records)).frame
    assert frame["teacher pretraining"].tolist() == ["BYOL"]
    row = frame.iloc[0]
    assert math.isnan(row["resnet50 teacher"])  # named by the students, but not in the table
    assert row["resnet18 student"] == 30.0 and row["resnet18 student (10% data)"] == 25.0


# --------------------------------------------------------------------------- published numbers


def _all_columns(table: pd.DataFrame, compare: bool) -> list[str]:
    return [c for t in paper.paper_tables(table, compare) for c in t.frame.columns]


def test_published_columns_only_with_the_flag(table: pd.DataFrame) -> None:
    assert not any(PAPER_COLUMN in c for c in _all_columns(table, False))
    assert not any(PAPER_COLUMN in t.markdown() for t in paper.paper_tables(table, False))
    assert any(PAPER_COLUMN in c for c in _all_columns(table, True))


def test_training_methods_beside_the_paper(table: pd.DataFrame) -> None:
    frame = paper.training_methods_table(table, compare_to_paper=True).frame
    assert "vit_small-d6-h3 " + PAPER_COLUMN not in frame.columns  # the paper has no ViT row here
    cells = frame.set_index("training")
    published = {  # supplement Table 2 (ImageNet, linear top-1)
        ("SimSiam IID", "resnet18"): "30.01",
        ("SimSiam IID + 10-epoch lr warmup", "resnet18"): "28.38",
        ("SimSiam IID", "resnet34"): "16.83",
        ("SimSiam IID + 10-epoch lr warmup", "resnet34"): "35.82",
        ("SimSiam IID", "resnet50"): "68.09",
    }
    for (row, arch), value in published.items():
        assert cells.at[row, f"{arch} {PAPER_COLUMN}"] == value
        assert cells.at[row, arch] == table.loc[
            (table["arch"] == arch) & (table["run"].str.startswith("ss-"))
            & (table["warmup_epochs"].eq(10) == ("warmup" in row)) & (table["strategy"] == "iid")
            & (table["dataset_fraction"] == 1.0), "linear_top1"].item()
    paper_cells = cells[[c for c in cells.columns if c.endswith(PAPER_COLUMN)]]
    assert paper_cells.notna().sum().sum() == len(published)  # MoCo-v3, BYOL, single-pass...: "—"
    assert pd.isna(cells.at["MoCo-v3 IID", f"resnet50 {PAPER_COLUMN}"])
    markdown = paper.training_methods_table(table, compare_to_paper=True).markdown()
    assert "| SimSiam IID | 31.1 | 30.01 | 17.1 | 16.83 | 67.3 | 68.09 | 20.5 |" in markdown


def test_strategies_beside_the_paper(table: pd.DataFrame) -> None:
    result = paper.strategies_table(table, compare_to_paper=True)
    rows = result.frame.set_index(["arch", "training"])[PAPER_COLUMN]
    assert rows[("resnet18", "SimSiam IID")] == "30.0"
    assert rows[("resnet18", "NNSiam IID")] == "34.4"
    assert rows[("resnet18", "SimSiam single-pass")] == "44.5"
    assert rows[("resnet18", "SimSiam hybrid (K=40)")] == "48.3"
    assert rows.notna().sum() == 4  # warmup, cumulative, BYOL, other archs: no published number
    resnet34_section = result.markdown().split("## resnet34")[1]
    assert PAPER_COLUMN not in resnet34_section  # no number for that arch: no column of dashes


def test_distillation_beside_the_paper(table: pd.DataFrame) -> None:
    rows = paper.distillation_table(table, compare_to_paper=True).frame.set_index("teacher pretraining")
    column = f" {PAPER_COLUMN}"
    assert rows.loc["SimSiam", ["resnet50 teacher" + column, "resnet18 student" + column,
                                "resnet34 student" + column]].tolist() == ["68.1", "58.9", "62.5"]
    assert rows.loc["MoCo-v3", ["resnet50 teacher" + column, "resnet18 student" + column,
                                "resnet34 student" + column]].tolist() == ["66.4", "56.4", "57.5"]


def test_published_numbers_follow_what_a_run_is_not_its_name(table: pd.DataFrame) -> None:
    renamed = {r["run"]: f"run-{i}" for i, r in enumerate(_matrix())}
    records = []
    for record in _matrix():
        teacher = record["teacher"]
        records.append({**record, "run": renamed[record["run"]], "group": "g",
                        "teacher": renamed.get(teacher, teacher) if teacher else None})
    before = paper.paper_tables(table, compare_to_paper=True)
    after = paper.paper_tables(build_run_table(records), compare_to_paper=True)
    for one, other in zip(before, after):
        pd.testing.assert_frame_equal(one.frame.drop(columns="teacher run", errors="ignore"),
                                      other.frame.drop(columns="teacher run", errors="ignore"))
    # a run named like the paper's IID run but trained single-pass gets the single-pass number
    misleading = [_record("simsiam-resnet18-iid-100pct", "simsiam", "resnet18", strategy="single-pass")]
    rows = paper.strategies_table(build_run_table(misleading), True).frame
    assert rows[PAPER_COLUMN].tolist() == ["44.5"]


def test_only_the_papers_width_block_and_recipe_get_its_numbers() -> None:
    records = [
        _record("paper-width", "simsiam", "resnet18", top1=22.0),
        _record("narrow", "simsiam", "resnet18-w32", top1=20.0),
        _record("wide", "simsiam", "resnet18-w128", top1=21.0),
        _record("wide-block", "simsiam", "resnet18-bottleneck-w96", top1=25.0),
        _record("vit-no-warmup", "simsiam", "vit_small", top1=5.0),  # departs from the ViT recipe
    ]
    frame = paper.training_methods_table(build_run_table(records), compare_to_paper=True).frame
    rows = frame.set_index("training")
    assert rows.at["SimSiam IID", f"resnet18 {PAPER_COLUMN}"] == "30.01"
    assert rows.at["SimSiam IID", "resnet18-w32"] == 20.0  # our number stays, with no published one beside it
    for other in ("resnet18-w32", "resnet18-w128", "resnet18-bottleneck-w96"):
        assert f"{other} {PAPER_COLUMN}" not in frame.columns
    assert rows.at["SimSiam IID without lr warmup", "vit_small"] == 5.0
    assert pd.isna(rows.at["SimSiam IID without lr warmup", f"resnet18 {PAPER_COLUMN}"])
    strategies = paper.strategies_table(build_run_table(records), compare_to_paper=True).frame.set_index("arch")
    assert strategies.at["resnet18", PAPER_COLUMN] == "30.0" and pd.isna(strategies.at["resnet18-w32", PAPER_COLUMN])


@pytest.mark.parametrize(("switch_epoch", "epochs", "published"), [
    (40, 100, "48.3"), (4, 10, "48.3"), (5, 100, None), (40, 90, None), (None, 100, None), (40, None, None),
])
def test_the_hybrids_number_only_at_the_papers_switch_point(switch_epoch, epochs, published) -> None:
    record = _record("hy", "simsiam", "resnet18", strategy="hybrid", switch_epoch=switch_epoch, epochs=epochs)
    rows = paper.strategies_table(build_run_table([record]), compare_to_paper=True).frame
    cell = rows[PAPER_COLUMN].iloc[0]
    assert (None if pd.isna(cell) else cell) == published


@pytest.mark.parametrize(("mode", "says"), [("cached", "ours is the cached probe"),
                                            ("augmented", "ours is the paper's protocol"),
                                            (None, "ours is the cached probe")])
def test_a_compared_table_says_which_probe_ours_is(table: pd.DataFrame, mode, says) -> None:
    records = [{**r, "linear_probe_mode": mode} for r in _matrix()]
    for page in paper.paper_tables(build_run_table(records), compare_to_paper=True):
        assert says in page.markdown()
    assert not any("**probe**" in page.markdown() for page in paper.paper_tables(table, compare_to_paper=False))


def test_seeds_fold_into_mean_sd_and_n_in_every_paper_table(tmp_path: Path) -> None:
    records = [_record(f"ss-r18-s{s}", "simsiam", "resnet18", top1=top1, seed=s, seed_group="ss-r18", num_classes=10)
               for s, top1 in enumerate([30.0, 34.0])]
    records += [_record("ss-r50", "simsiam", "resnet50", top1=67.3),
                _student("st-s0", "resnet18", "ss-r50", "simsiam", 50.0, seed=0, seed_group="st"),
                _student("st-s1", "resnet18", "ss-r50", "simsiam", 54.0, seed=1, seed_group="st"),
                _record("random-init-resnet18", "random-init", "resnet18", fraction=NAN, strategy="none", top1=9.9,
                        num_classes=10)]
    table = build_run_table(records)
    sd = float(np.std([30.0, 34.0], ddof=1))
    methods = paper.training_methods_table(table)
    assert methods.frame.set_index("training").at["SimSiam IID", "resnet18"] == 32.0
    assert f"32.0 ± {sd:.1f} (n=2)" in methods.markdown()
    strategies = paper.strategies_table(table)
    assert len(strategies.frame) == 2 and f"32.0 ± {sd:.1f} (n=2)" in strategies.markdown()
    distillation = paper.distillation_table(table)
    assert distillation.frame.set_index("teacher run").at["ss-r50", "resnet18 student"] == 52.0
    assert "(n=2)" in distillation.markdown()
    for page in (methods, strategies, distillation):
        assert "chance 10.0 %" in page.markdown() and "random init resnet18: linear 9.9" in page.markdown()
    paths = methods.write(tmp_path)
    written = pd.read_csv(paths[0]).set_index("training")
    assert written.at["SimSiam IID", "resnet18 sd"] == pytest.approx(sd) and written.at["SimSiam IID", "resnet18 n"] == 2


def test_every_published_number_is_reachable_by_its_key() -> None:
    keys = [(p.table, p.method, p.arch, p.strategy, p.warmup, p.role, p.teacher_arch) for p in paper.PUBLISHED]
    assert len(keys) == len(set(keys))
    for entry in paper.PUBLISHED:
        assert float(entry.top1) > 0 and entry.source
        found = paper.published_top1(entry.table, entry.method, entry.arch, entry.strategy, entry.warmup,
                                     entry.role, entry.teacher_arch, entry.switch_at)
        assert found == entry.top1
    assert paper.published_top1("training_methods", "simsiam", "resnet18", warmup=None) is None


# --------------------------------------------------------------------------- empty tables and files


def test_empty_tables_are_written_with_a_note(tmp_path: Path) -> None:
    records = [_record("ss-r18-10pct", "simsiam", "resnet18", fraction=0.1, top1=41.0)]
    paths = paper.write_result_tables(build_run_table(records), tmp_path, compare_to_paper=True)
    assert [p.name for p in paths] == list(TABLE_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(TABLE_FILES)  # no temporary files
    for name, hint in [("distillation", "distillations:"), ("training_methods", "fraction 1.0"),
                       ("strategies", "fraction 1.0")]:
        text = (tmp_path / f"{name}.md").read_text()
        notes = [line for line in text.splitlines() if line.startswith("_")]
        assert len(notes) == 1 and hint in notes[0], name
        assert "|" not in text  # no table at all
        assert pd.read_csv(tmp_path / f"{name}.csv").empty
    runs_md = (tmp_path / "runs.md").read_text().splitlines()
    assert runs_md[-1] == paper.index_line() and "distillation.md" in runs_md[-1]
    assert "forecast.md" in runs_md[-1] and "metrics.csv" in runs_md[-1]
    assert "Only 1 trained runs" in (tmp_path / "forecast.md").read_text()  # one run: nothing to correlate
    assert pd.read_csv(tmp_path / "forecast.csv").empty
    metrics = pd.read_csv(tmp_path / "metrics.csv")  # no spectrum summaries given: the header only
    assert metrics.empty and list(metrics.columns) == METRICS_TABLE_COLUMNS


# --------------------------------------------------------------------------- the stages, end to end


def _write_run_dir(root: Path, record: dict[str, Any], seed: int, new_style: bool = False) -> Path:
    """A run directory as the pipeline leaves it: run.json, the metric files and the spectrum; a
    ``new_style`` one with every label-free metric and its variants, and a train log with tracked metrics."""
    run_dir = root / record["run"]
    run_dir.mkdir(parents=True)
    info = {k: v for k, v in record.items() if k not in ("auc", "linear_top1", "knn_top1")}
    info = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in info.items()}
    (run_dir / "run.json").write_text(json.dumps(info))
    spectrum = np.geomspace(10.0, 10.0 ** -(seed % 5), 32)
    if new_style:
        values = collapse_runs.metrics_of(record["linear_top1"])
        (run_dir / "spectrum.json").write_text(json.dumps(collapse_runs.spectrum_summary(values)))
        collapse_runs.write_train_log(run_dir / "train_log.csv", collapse_runs.train_log(values))
    else:
        (run_dir / "spectrum.json").write_text(json.dumps({"auc": record["auc"], "effective_rank": 7.5}))
    (run_dir / "linear_probe.json").write_text(json.dumps({"linear_top1": record["linear_top1"], "epochs": 3}))
    (run_dir / "knn.json").write_text(json.dumps({"knn_top1": record["knn_top1"], "knn_k": 20}))
    write_spectrum(run_dir / "spectrum.csv", spectrum)
    return run_dir


def test_collect_and_plot_stages_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = [r for r in _matrix() if r["run"] in {"ss-r18", "ss-sp-r18", "nn-r18", "ss-r50", "st-ss-r18",
                                                    "ss-r18-10pct", "random-init-resnet18"}]
    old_style = {k: records[0][k] for k in ("run", "method", "arch", "dataset_fraction", "strategy",
                                            "auc", "linear_top1", "knn_top1")}
    old_style.update(run="old-run", linear_top1=11.1)  # a record from before the new keys existed
    run_dirs = [_write_run_dir(tmp_path / "runs", r, i, new_style=True) for i, r in enumerate(records)]
    run_dirs.append(_write_run_dir(tmp_path / "runs", old_style, len(records)))
    out = tmp_path / "tables"
    assert cli.main(["collect-tables", *HEALTH_ARGS, "--run-dirs", *map(str, run_dirs), "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(TABLE_FILES + COST_TABLE_FILES)
    assert pd.read_csv(out / COST_TABLE_FILES[0]).empty  # no --benchmarks: no costs, and the page says why
    runs = pd.read_csv(out / "runs.csv").set_index("run")
    assert len(runs) == len(run_dirs)
    assert runs.at["ss-r18", "rankme"] == collapse_runs.metrics_of(31.1)["rankme"]
    assert runs.at["old-run", "effective_rank"] == 7.5 and runs.loc["old-run", ["rankme", "lidar"]].isna().all()
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics.groupby("run").size().to_dict() == {**{r["run"]: 22 for r in records}, "old-run": 2}
    assert set(metrics.loc[metrics["run"] == "old-run", "metric"]) == {"auc", "effective_rank"}
    forecast = pd.read_csv(out / "forecast.csv")  # the five trained runs of resnet18, the one of resnet50
    assert set(forecast["arch"]) == {"resnet18", "resnet50"}
    pooled = forecast[(forecast["arch"] == "resnet18") & (forecast["probe"] == "linear_top1")
                      & (forecast["group"] == "pooled")].set_index("metric")
    assert pooled.at["auc", "n_runs"] == 6 and pooled.at["rankme", "n_runs"] == 5  # old-run: AUC only
    methods = pd.read_csv(out / "training_methods.csv").set_index("training")
    assert methods.at["SimSiam single-pass", "resnet18"] == 44.3
    assert (out / "runs.md").read_text().splitlines()[-1] == paper.index_line()
    assert PAPER_COLUMN not in (out / "strategies.md").read_text()

    assert cli.main(["collect-tables", *HEALTH_ARGS, "--run-dirs", *map(str, run_dirs), "--out-dir", str(out), "--compare-to-paper"]) == 0
    strategies = pd.read_csv(out / "strategies.csv", dtype={PAPER_COLUMN: str}).set_index("training")
    assert strategies.at["SimSiam single-pass", PAPER_COLUMN] == "44.5"
    distillation = pd.read_csv(out / "distillation.csv").set_index("teacher run")
    assert distillation.at["ss-r50", "resnet18 student"] == 57.6

    figures = tmp_path / "figures"
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        assert cli.main(["plot-figures", "--table", str(out / "runs.csv"), "--run-dirs", *map(str, run_dirs),
                         "--out-dir", str(figures)]) == 0
    assert sorted(p.name for p in figures.iterdir()) == sorted(FIGURE_NAMES)
    assert all((figures / name).stat().st_size > 1000 for name in FIGURE_NAMES)
    # the train logs were read: one line per trained run with tracked values (old-run has no log)
    tracked = capture.figures["tracked_metrics.png"].axes[0].get_lines()
    assert len([line for line in tracked if len(line.get_xdata()) == 3]) == 6  # six trained new-style runs
    capsys.readouterr()


def test_collect_no_longer_takes_separate_output_files(tmp_path: Path) -> None:
    run_dir = _write_run_dir(tmp_path, _record("ss-r18", "simsiam", "resnet18"), 0)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["collect-tables", *HEALTH_ARGS, "--run-dirs", str(run_dir), "--out-csv", str(tmp_path / "t.csv")])
    assert exit_.value.code == 2 and not (tmp_path / "t.csv").exists()
