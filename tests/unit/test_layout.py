"""siamcollapse.layout is the one home of the output tree's file names: the workflow, the stages
and the reports name files through it, and no other module spells one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from siamcollapse import layout
from siamcollapse.codedeps import PACKAGE_DIR

REPO = PACKAGE_DIR.parents[1]
RUN = layout.RunDir(Path("run"))
NAMES = sorted({path.name for path in (RUN.checkpoint, RUN.train_log, RUN.info, RUN.resume, RUN.spectrum,
                                       RUN.spectrum_summary, RUN.linear_probe, RUN.knn, *RUN.features.files())}
               | set(layout.TABLE_FILES) | set(layout.FIGURE_NAMES))


def python_literals(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_the_run_directory_has_the_files_the_stages_write():
    assert [p.name for p in RUN.features.files()] == ["train.npy", "train_labels.npy", "val.npy", "val_labels.npy",
                                                       "meta.json"]
    assert RUN.state(40).name == "state-epoch40.pt" and RUN.checkpoint.parent == RUN.path
    tree = layout.OutputTree(Path("results"))
    assert tree.run("a").knn == Path("results/runs/a/knn.json")
    assert tree.run_table.parent == tree.tables and tree.subset("10pct") == Path("results/subsets/10pct.json")


def test_no_module_or_rule_file_but_layout_spells_a_file_name_of_the_output_tree():
    spelled = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        # the figure modules key their plot functions by figure name, checked at import against layout's
        allowed = set(layout.FIGURE_NAMES) if path.name in ("plots.py", "training_plots.py") else set()
        if path.name != "layout.py":
            spelled += [f"{path.name}: {name}" for name in (set(NAMES) - allowed) & python_literals(path)]
    for path in sorted((REPO / "workflow").rglob("*.smk")):
        text = path.read_text()
        spelled += [f"{path.name}: {name}" for name in NAMES if re.search(rf"[\"'/]{re.escape(name)}[\"']", text)]
    assert spelled == []


def test_the_tables_are_the_run_table_the_paper_tables_the_forecast_and_the_long_metrics():
    assert layout.TABLE_FILES[:2] == layout.RUN_TABLE_FILES and layout.TABLE_FILES[-1] == layout.METRICS_TABLE_FILE
    assert "forecast.csv" in layout.TABLE_FILES and "forecast.md" in layout.TABLE_FILES
    assert len(set(layout.TABLE_FILES)) == len(layout.TABLE_FILES) == 2 * len(layout.TABLE_NAMES) + 1
    assert layout.FIGURE_NAMES[-3:] == ("tracked_metrics.png", "collapse_over_training.png", "forecast.png")


def test_the_check_finds_a_spelled_name(tmp_path):
    module = tmp_path / "module.py"
    module.write_text('CHECKPOINT = "checkpoint.pt"  # spelled again\n')
    assert "checkpoint.pt" in set(NAMES) & python_literals(module)
