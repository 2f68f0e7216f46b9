"""Result tables in the paper's shape, the paper's published numbers, and the run labels.

Three tables are computed from the run table (``tables.build_run_table``), each a DataFrame
(written as CSV) with a Markdown page:

- ``distillation`` (supplement Table 1): one row per teacher, the teacher's and each student
  architecture's linear top-1;
- ``training_methods`` (supplement Table 2): one row per training method on the full data,
  one column per architecture, linear top-1;
- ``strategies`` (the paper's training-strategy comparison): per architecture, one row per
  training method/strategy on the full data, with linear top-1, kNN top-1 and AUC.

Each table folds the seeds of a setting into one row first (``tables.summarise_seeds``): a
cell is the mean over seeds, shown as 'mean ± sd (n=k)'; the CSV has the mean in the column and
'<column> sd' / '<column> n' beside it. Every page states the chance level and the floors
(random init, raw pixels) above its table.

With ``compare_to_paper`` the paper's ImageNet linear top-1 numbers (``PUBLISHED``) stand in
columns of their own beside ours. They are matched by what a run *is* (method, strategy,
added lr warmup, architecture at the paper's width, the hybrid's switch point), never by its
name, so renaming a run group cannot attach the wrong number; the page says which linear probe
ours used (the published numbers are the paper's augmented LARS probe). ``training_label`` is
the one place that names a run's training for tables and figures alike. ``write_result_tables``
writes every table of ``layout.TABLE_FILES``: these, the run table, the forecast
(``reporting.forecast``) and the long metrics table.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from siamcollapse import io
from siamcollapse.layout import METRICS_TABLE_FILE, RUN_TABLE_FILES
from siamcollapse.names import DISTILL, RANDOM_INIT, RAW_PIXELS
from siamcollapse.reporting import forecast
from siamcollapse.reporting.health import health_note
from siamcollapse.reporting.tables import (
    FLOOR_METHODS,
    MISSING,
    N_SEEDS,
    SD_SUFFIX,
    floors_line,
    format_fraction,
    format_mean_sd,
    format_number,
    format_text,
    is_baseline,
    is_missing,
    metrics_table,
    pipe_table,
    summarise_seeds,
    write_csv,
    write_run_table,
)

FULL_DATA = 1.0
PAPER_COLUMN = "paper (ImageNet)"

# --------------------------------------------------------------------------- labels

METHOD_NAMES = {
    "simsiam": "SimSiam",
    "nnsiam": "NNSiam",
    "mocov3": "MoCo-v3",
    "byol": "BYOL",
    DISTILL: "distilled",
    RANDOM_INIT: "random init",
    RAW_PIXELS: "raw pixels",
}
STRATEGY_NAMES = {
    "iid": "IID",
    "single-pass": "single-pass",
    "cumulative": "cumulative",
    "last": "last-k",
    "hybrid": "hybrid",
}
# MoCo-v3 and BYOL train with 10 warmup epochs as part of their recipe (DESIGN §2; the config
# schema's method defaults), and so does every method on a ViT (MoCo-v3's ViT optimiser): a
# label mentions warmup only where a run departs from its recipe.
RECIPE_WARMUP_EPOCHS = {"mocov3": 10.0, "byol": 10.0}
VIT_RECIPE_WARMUP_EPOCHS = 10.0


def _get(record: Mapping[str, Any], key: str) -> Any:
    """A record's value, None where the key is absent or null (older records lack new keys)."""
    value = record.get(key)
    return None if is_missing(value) else value


def method_name(method: Any) -> str:
    """'mocov3' -> 'MoCo-v3'; an unknown method keeps its own name."""
    return METHOD_NAMES.get(str(method), str(method))


def strategy_name(strategy: Any, switch_epoch: Any = None) -> str:
    """'iid' -> 'IID', 'last' -> 'last-k', 'hybrid' with K=5 -> 'hybrid (K=5)'."""
    name = STRATEGY_NAMES.get(str(strategy), str(strategy))
    if strategy == "hybrid" and not is_missing(switch_epoch):
        name = f"{name} (K={float(switch_epoch):g})"
    return name


def recipe_warmup_epochs(method: Any, arch: Any = None) -> float:
    """The lr warmup a method's recipe has on an arch: 10 for MoCo-v3, BYOL and any ViT, else 0."""
    if str(arch).startswith("vit"):
        return VIT_RECIPE_WARMUP_EPOCHS
    return RECIPE_WARMUP_EPOCHS.get(str(method), 0.0)


def added_warmup(method: Any, warmup_epochs: Any, arch: Any = None) -> bool | None:
    """How a run's lr warmup relates to its recipe (``recipe_warmup_epochs``).

    False: the recipe's own (none for SimSiam on a ResNet, 10 epochs for MoCo-v3/BYOL); True:
    warmup added to a recipe without it (the paper's "SimSiam + 10-epoch lr warmup"); None: any
    other departure (e.g. MoCo-v3 without warmup), which the paper never ran. Missing counts as 0.
    """
    warmup = 0.0 if is_missing(warmup_epochs) else float(warmup_epochs)
    recipe = recipe_warmup_epochs(method, arch)
    if warmup == recipe:
        return False
    return True if recipe == 0 else None


def warmup_suffix(method: Any, warmup_epochs: Any, arch: Any = None) -> str:
    """'' for the recipe's warmup, ' + 10-epoch lr warmup', ' without lr warmup', ' + 5-epoch lr warmup'."""
    if added_warmup(method, warmup_epochs, arch) is False:
        return ""
    warmup = 0.0 if is_missing(warmup_epochs) else float(warmup_epochs)
    return " without lr warmup" if warmup == 0 else f" + {warmup:g}-epoch lr warmup"


def training_label(record: Mapping[str, Any]) -> str:
    """How a run was trained, in the paper's words (architecture and data size excluded).

    'SimSiam IID', 'SimSiam IID + 10-epoch lr warmup', 'MoCo-v3 IID', 'NNSiam IID',
    'SimSiam hybrid (K=5)', 'distilled from SimSiam', 'random init'.
    """
    method = record["method"]
    if method in FLOOR_METHODS:
        return method_name(method)
    if method == DISTILL:
        teacher = _get(record, "teacher_method")
        return method_name(method) + (f" from {method_name(teacher)}" if teacher else "")
    strategy = strategy_name(record.get("strategy"), _get(record, "switch_epoch"))
    suffix = warmup_suffix(method, _get(record, "warmup_epochs"), record.get("arch"))
    return f"{method_name(method)} {strategy}{suffix}"


def _order(value: Any, ordered: Iterable[str]) -> int:
    names = list(ordered)
    return names.index(value) if value in names else len(names)


def training_sort_key(record: Mapping[str, Any]) -> tuple:
    """Rows by strategy (IID first, as the paper lists them), then method, warmup, K; students
    and random init last."""
    method = record["method"]
    warmup = _get(record, "warmup_epochs")
    switch = _get(record, "switch_epoch")
    return (
        method == DISTILL or method in FLOOR_METHODS,
        _order(record.get("strategy"), STRATEGY_NAMES),
        _order(method, METHOD_NAMES),
        0.0 if warmup is None else float(warmup),
        0.0 if switch is None else float(switch),
        training_label(record),
    )


def arch_sort_key(arch: Any) -> tuple:
    """resnet18 < resnet18-w32 < resnet34 < resnet50 < vit_small < anything else."""
    text = str(arch)
    resnet = re.match(r"resnet(\d+)", text)
    if resnet:
        return (0, int(resnet.group(1)), text)
    return (1 if text.startswith("vit") else 2, 0, text)


def paper_arch(arch: Any) -> str | None:
    """The paper's ResNet a run's arch is, or None: 'resnet18' -> 'resnet18'; 'resnet18-w32' -> None.

    Only the paper's own models get its numbers: a narrower or wider ResNet (any '-w<width>',
    i.e. width != 64), block variants (e.g. 'resnet18-bottleneck') and ViTs are other models.
    """
    match = re.fullmatch(r"(resnet18|resnet34|resnet50)", str(arch))
    return match.group(1) if match else None


# --------------------------------------------------------------------------- published numbers

SUPPLEMENT_TABLE_1 = "supplement Table 1 (distillation, ResNet-50 teachers)"
SUPPLEMENT_TABLE_2 = "supplement Table 2 (training methods x architecture)"
STRATEGY_COMPARISON = "main paper, training-strategy comparison (ResNet-18, SimSiam unless noted)"


@dataclass(frozen=True)
class Published:
    """One ImageNet linear-probe top-1 (%) the paper reports, keyed by what the run is.

    ``top1`` is the number as printed (its digits are the paper's precision: '30.0', '30.01');
    ``table`` is our table it belongs in; ``warmup`` is ``added_warmup`` of the run (False: the
    method's recipe); ``role`` is 'teacher' or 'student' in the distillation table, 'run'
    elsewhere; ``teacher_arch`` is a student's teacher's architecture; ``switch_at`` is a
    hybrid's switch point as a fraction of its epochs (the authors resume epoch 40 of 100).
    """

    source: str
    table: str
    method: str
    arch: str
    top1: str
    strategy: str = "iid"
    warmup: bool = False
    role: str = "run"
    teacher_arch: str | None = None
    switch_at: float | None = None


PAPER_HYBRID_SWITCH = 40 / 100  # the authors' hybrid: single-pass for 40 of 100 epochs, then IID
PUBLISHED: tuple[Published, ...] = (
    # Supplement Table 1: students (ResNet-18/34 + a linear layer) trained to predict a ResNet-50
    # teacher's representation; "method" is the teacher's pretraining algorithm.
    Published(SUPPLEMENT_TABLE_1, "distillation", "simsiam", "resnet50", "68.1", role="teacher"),
    Published(SUPPLEMENT_TABLE_1, "distillation", "simsiam", "resnet18", "58.9", role="student", teacher_arch="resnet50"),
    Published(SUPPLEMENT_TABLE_1, "distillation", "simsiam", "resnet34", "62.5", role="student", teacher_arch="resnet50"),
    Published(SUPPLEMENT_TABLE_1, "distillation", "mocov3", "resnet50", "66.4", role="teacher"),
    Published(SUPPLEMENT_TABLE_1, "distillation", "mocov3", "resnet18", "56.4", role="student", teacher_arch="resnet50"),
    Published(SUPPLEMENT_TABLE_1, "distillation", "mocov3", "resnet34", "57.5", role="student", teacher_arch="resnet50"),
    # Supplement Table 2: SimSiam on all of ImageNet, with and without 10 epochs of lr warmup.
    Published(SUPPLEMENT_TABLE_2, "training_methods", "simsiam", "resnet18", "30.01"),
    Published(SUPPLEMENT_TABLE_2, "training_methods", "simsiam", "resnet18", "28.38", warmup=True),
    Published(SUPPLEMENT_TABLE_2, "training_methods", "simsiam", "resnet34", "16.83"),
    Published(SUPPLEMENT_TABLE_2, "training_methods", "simsiam", "resnet34", "35.82", warmup=True),
    Published(SUPPLEMENT_TABLE_2, "training_methods", "simsiam", "resnet50", "68.09"),
    # Training strategies, ResNet-18 on all of ImageNet (hybrid: +18 points over multi-pass).
    Published(STRATEGY_COMPARISON, "strategies", "simsiam", "resnet18", "30.0"),
    Published(STRATEGY_COMPARISON, "strategies", "nnsiam", "resnet18", "34.4"),
    Published(STRATEGY_COMPARISON, "strategies", "simsiam", "resnet18", "44.5", strategy="single-pass"),
    Published(STRATEGY_COMPARISON, "strategies", "simsiam", "resnet18", "48.3", strategy="hybrid",
              switch_at=PAPER_HYBRID_SWITCH),
)


def published_top1(
    table: str,
    method: Any,
    arch: Any,
    strategy: Any = "iid",
    warmup: bool | None = False,
    role: str = "run",
    teacher_arch: Any = None,
    switch_at: float | None = None,
) -> str | None:
    """The paper's number (as printed) for a run of this kind in ``table``, or None where it has none.

    ``arch`` and ``teacher_arch`` are our arch ids (mapped by ``paper_arch``); ``warmup`` is
    ``added_warmup`` of the run (None: a departure the paper never ran, so no number);
    ``switch_at`` is a hybrid's switch_epoch / epochs (a number only at the paper's 0.4).
    """
    key = (table, str(method), paper_arch(arch), str(strategy), warmup, role, paper_arch(teacher_arch))
    for entry in PUBLISHED:
        entry_key = (entry.table, entry.method, entry.arch, entry.strategy, entry.warmup, entry.role, entry.teacher_arch)
        if entry.switch_at is not None and (switch_at is None or not math.isclose(switch_at, entry.switch_at)):
            continue
        if warmup is not None and key == entry_key:
            return entry.top1
    return None


def switch_at(record: Mapping[str, Any]) -> float | None:
    """A hybrid run's switch point as a fraction of its epochs; None where either is unknown."""
    switch, epochs = _get(record, "switch_epoch"), _get(record, "epochs")
    return float(switch) / float(epochs) if switch is not None and epochs else None


def _run_published(table: str, record: Mapping[str, Any], arch: Any = None) -> str | None:
    """The paper's number for the row of an ordinary (non-student) run in ``table``, in the column
    of ``arch`` (default: the run's own). The row is what the run's label says: its warmup is
    judged against the recipe of the run's own arch."""
    method = record["method"]
    warmup = added_warmup(method, _get(record, "warmup_epochs"), record["arch"])
    return published_top1(table, method, record["arch"] if arch is None else arch, record.get("strategy"), warmup,
                          switch_at=switch_at(record))


# --------------------------------------------------------------------------- one table


@dataclass(frozen=True)
class PaperTable:
    """One paper-shaped table: its numbers, what they mean, and what fills it when empty.

    ``frame`` holds our numbers as floats (NaN: no such run), labels as text and the paper's
    numbers as printed ('30.01'; NaN: none). ``section`` names a column that splits the
    Markdown into one table per value (the strategies table: arch).
    """

    name: str
    title: str
    notes: tuple[str, ...]
    frame: pd.DataFrame
    empty_note: str
    numeric_columns: tuple[str, ...]
    section: str | None = None
    compared: bool = False
    # Per value cell of ``frame``: the sd over seeds and their count (same index; absent: none).
    sd: pd.DataFrame | None = None
    n: pd.DataFrame | None = None
    floors: str | None = None  # the chance level and floors line (tables.floors_line)
    probe_note: str | None = None  # which linear probe ours used, beside the paper's numbers
    health: str | None = None  # the footnote naming the experiment's collapsed or diverged runs

    def _cell(self, column: str, index: Any, value: Any) -> str:
        if self.n is not None and column in self.n.columns and not column.endswith(PAPER_COLUMN):
            decimals = 3 if column == "AUC" else 1
            return format_mean_sd(value, self.sd.at[index, column], self.n.at[index, column], decimals)
        return _format(column, column in self.numeric_columns)(value)

    def _pipe(self, frame: pd.DataFrame) -> str:
        columns = list(frame.columns)
        rows = ([self._cell(column, index, row[column]) for column in columns] for index, row in frame.iterrows())
        return pipe_table(columns, rows, [column in self.numeric_columns for column in columns])

    def csv_frame(self) -> pd.DataFrame:
        """``frame`` with '<column> sd' and '<column> n' after each value column averaged over seeds."""
        if self.n is None:
            return self.frame
        out = {}
        for column in self.frame.columns:
            out[column] = self.frame[column]
            if column in self.n.columns:
                out[f"{column} sd"], out[f"{column} n"] = self.sd[column], self.n[column].astype("Int64")
        return pd.DataFrame(out)

    def body(self) -> str:
        """The table(s), or the note saying which runs would fill them."""
        if self.frame.empty:
            return f"_{self.empty_note}_"
        if self.section is None:
            return self._pipe(self.frame)
        parts = []
        for value, rows in self.frame.groupby(self.section, sort=False):
            # a section the paper has no number for (another arch) needs no column of dashes
            blank = [c for c in rows.columns if c.endswith(PAPER_COLUMN) and rows[c].isna().all()]
            parts += [f"## {value}", self._pipe(rows.drop(columns=[self.section, *blank]))]
        return "\n\n".join(parts)

    def markdown(self) -> str:
        notes = [*self.notes, _SEEDS_NOTE]
        if self.compared and not self.frame.empty:
            notes.append(_COMPARISON_NOTE)
            if self.probe_note:
                notes.append(self.probe_note)
        parts = [f"# {self.title}", "\n".join(f"- {note}" for note in notes), *([self.floors] if self.floors else []),
                 self.body(), *([self.health] if self.health and not self.frame.empty else [])]
        return "\n\n".join(parts) + "\n"

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write ``<name>.csv`` and ``<name>.md`` into ``out_dir`` atomically; return both paths."""
        csv_path, md_path = Path(out_dir) / f"{self.name}.csv", Path(out_dir) / f"{self.name}.md"
        write_csv(csv_path, self.csv_frame())
        io.write_text(md_path, self.markdown())
        return [csv_path, md_path]


def _format(column: str, numeric: bool) -> Callable[[Any], str]:
    if not numeric or column.endswith(PAPER_COLUMN):  # published numbers are kept as printed
        return format_text
    if column == "AUC":
        return lambda v: format_number(v, 3)
    return format_number


_COMPARISON_NOTE = (
    f"**{PAPER_COLUMN}**: the linear top-1 (%) the paper reports on ImageNet, matched by method, "
    "training strategy, added lr warmup and architecture (ResNet-18/34/50 at the paper's width 64 only; "
    "a hybrid only at the paper's switch, epoch 40 of 100); "
    f"{MISSING} where the paper has no such number. Ours come from this config's dataset and "
    "budget: compare orderings and gaps, not values."
)
_SEEDS_NOTE = ("cells: mean ± sample sd over the n seeds of a setting, 'mean ± sd (n=k)'; a plain number is "
               "a single run (n = 1); the CSV holds each mean with '<column> sd' and '<column> n' beside it")


def probe_note(table: pd.DataFrame) -> str:
    """Which linear probe produced our numbers, against the paper's (augmented images, LARS)."""
    trained = table[~is_baseline(table)] if "method" in table.columns else table
    modes = set(trained["linear_probe_mode"].dropna()) if "linear_probe_mode" in trained.columns else set()
    modes = modes or {"cached"}  # records older than the field came from the cached probe, then the only one
    if modes == {"augmented"}:
        return ("**probe**: ours is the paper's protocol, the augmented linear probe (random resized crops "
                "through the frozen backbone, LARS); we report the last epoch, the authors their best val epoch.")
    which = "the cached probe" if modes == {"cached"} else f"a mix of probes ({', '.join(sorted(modes))})"
    return (f"**probe**: ours is {which} (a linear layer on fixed, non-augmented features), not the paper's "
            "augmented LARS probe: the published numbers are for the paper's protocol and are not directly "
            "comparable; set linear_probe.mode: augmented for the paper's probe.")
_TOP1_NOTE = f"cells: linear-probe top-1 accuracy (%) on the validation set, frozen backbone; {MISSING} = no such run"


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return table.to_dict(orient="records")


def _settings(table: pd.DataFrame) -> pd.DataFrame:
    """One row per setting (seeds folded into mean, sd and n) of a per-run table."""
    return table if N_SEEDS in table.columns else summarise_seeds(table)


def _spread(record: Mapping[str, Any], metric: str) -> tuple[Any, Any]:
    """(sd, n) of a setting's ``metric`` over its seeds (NaN, 1 for a record with no summary)."""
    sd = record.get(metric + SD_SUFFIX)
    return (math.nan if is_missing(sd) else sd), (record.get(N_SEEDS) or 1)


class _Cells:
    """Rows of a table being built: values, and for averaged ones their sd and n."""

    def __init__(self) -> None:
        self.values: dict[Any, dict[str, Any]] = {}
        self.sd: dict[Any, dict[str, Any]] = {}
        self.n: dict[Any, dict[str, Any]] = {}

    def row(self, key: Any, **labels: Any) -> dict[str, Any]:
        self.sd.setdefault(key, {})
        self.n.setdefault(key, {})
        return self.values.setdefault(key, dict(labels))

    def put(self, key: Any, column: str, record: Mapping[str, Any] | None, metric: str = "linear_top1") -> None:
        """The mean of ``metric`` of ``record`` (a setting) in the cell, NaN where there is none."""
        self.row(key)[column] = record[metric] if record is not None else math.nan
        sd, n = _spread(record, metric) if record is not None else (math.nan, math.nan)
        self.sd[key][column], self.n[key][column] = sd, n

    def frames(self, columns: list[str], keys: Iterable[Any] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        keys = list(self.values) if keys is None else list(keys)
        value_columns = [c for c in columns if any(c in self.n[k] for k in keys)]
        frame = _frame([self.values[k] for k in keys], columns)
        sd = pd.DataFrame.from_records([self.sd[k] for k in keys], columns=value_columns)
        n = pd.DataFrame.from_records([self.n[k] for k in keys], columns=value_columns)
        return frame, sd, n


def is_full_data(fraction: Any) -> bool:
    """A run pretrained on the whole training set (dataset_fraction 1.0; random init: never)."""
    return not is_missing(fraction) and abs(float(fraction) - FULL_DATA) < 1e-9


def _full_data(table: pd.DataFrame) -> pd.Series:
    return table["dataset_fraction"].map(is_full_data).astype(bool)


def _trained_full_data(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Full-data runs that were trained by a method (no students, no random init)."""
    rows = table[_full_data(table) & ~is_baseline(table) & (table["method"] != DISTILL)]
    return sorted(_records(rows), key=lambda r: (training_sort_key(r), arch_sort_key(r["arch"]), r["run"]))


def _row_labels(records: Sequence[dict[str, Any]], column: Callable[[dict[str, Any]], str]) -> list[str]:
    """``training_label`` of each run, told apart where two runs would share a cell.

    Runs that differ only in a setting the label does not show (e.g. the lr of another group)
    get their group (or run) name appended, so that no number silently replaces another.
    """
    labels = [training_label(r) for r in records]
    for tag in ("group", "run"):
        cells = [(label, column(r)) for label, r in zip(labels, records)]
        clashes = {cell for cell in cells if cells.count(cell) > 1}
        labels = [
            f"{label} [{_get(r, tag) or r['run']}]" if (label, column(r)) in clashes else label
            for label, r in zip(labels, records)
        ]
    return labels


# --------------------------------------------------------------------------- the three tables


def training_methods_table(table: pd.DataFrame, compare_to_paper: bool = False) -> PaperTable:
    """Supplement Table 2: rows = how full-data runs were trained, columns = arch, cells = linear top-1."""
    runs, table = table, _settings(table)
    records = _trained_full_data(table)
    labels = _row_labels(records, lambda r: str(r["arch"]))
    archs = sorted({str(r["arch"]) for r in records}, key=arch_sort_key)
    columns = ["training"]
    for arch in archs:
        columns += [arch] + ([f"{arch} {PAPER_COLUMN}"] if compare_to_paper and paper_arch(arch) else [])
    cells = _Cells()
    for label, record in zip(labels, records):
        row = cells.row(label, training=label)
        cells.put(label, str(record["arch"]), record)
        if compare_to_paper:
            for arch in archs:
                if paper_arch(arch):
                    row[f"{arch} {PAPER_COLUMN}"] = _run_published("training_methods", record, arch)
    frame, sd, n = cells.frames(columns)
    return PaperTable(
        name="training_methods",
        title="Training methods x architecture (supplement Table 2)",
        notes=(
            "rows: how the backbone was pretrained on the full training set (dataset_fraction 1.0)",
            "columns: backbone architecture",
            _TOP1_NOTE,
        ),
        frame=frame,
        empty_note=(
            "No trained run on the full training set in this config: a run group with fraction 1.0 "
            "(any method or strategy) fills this table."
        ),
        numeric_columns=tuple(columns[1:]),
        compared=compare_to_paper,
        sd=sd,
        n=n,
        floors=floors_line(runs),
        probe_note=probe_note(runs),
    )


_STRATEGY_COLUMNS = {"linear top-1 (%)": "linear_top1", "kNN top-1 (%)": "knn_top1", "AUC": "auc"}


def strategies_table(table: pd.DataFrame, compare_to_paper: bool = False) -> PaperTable:
    """The strategies comparison: per arch, one row per training of full-data runs (NNSiam and
    warmup variants their own rows), with linear top-1, kNN top-1 and AUC."""
    runs, table = table, _settings(table)
    records = sorted(_trained_full_data(table), key=lambda r: arch_sort_key(r["arch"]))  # stable: rows keep order
    labels = _row_labels(records, lambda r: str(r["arch"]))
    columns = ["arch", "training", "linear top-1 (%)"]
    columns += [PAPER_COLUMN] if compare_to_paper else []
    columns += ["kNN top-1 (%)", "AUC"]
    cells = _Cells()
    for i, (label, record) in enumerate(zip(labels, records)):
        row = cells.row(i, arch=record["arch"], training=label)
        for column, metric in _STRATEGY_COLUMNS.items():
            cells.put(i, column, record, metric)
        if compare_to_paper:
            row[PAPER_COLUMN] = _run_published("strategies", record)
    frame, sd, n = cells.frames(columns)
    return PaperTable(
        name="strategies",
        title="Training strategies (full training set)",
        notes=(
            (
                "rows: method and training strategy (IID = ordinary multi-epoch; single-pass, cumulative, "
                "last-k and hybrid (K = single-pass epochs before IID) cut a fixed ordering of the data into chunks)"
            ),
            "linear / kNN top-1: accuracy (%) on the validation set; AUC: collapse metric (lower = less collapse)",
        ),
        frame=frame,
        empty_note=(
            "No trained run on the full training set in this config: run groups with fraction 1.0 and "
            "different pretrain.strategy (or method) fill this table."
        ),
        numeric_columns=tuple(columns[2:]),
        section="arch",
        compared=compare_to_paper,
        sd=sd,
        n=n,
        floors=floors_line(runs),
        probe_note=probe_note(runs),
    )


@dataclass(frozen=True)
class _Teacher:
    """A distillation table row: the teacher run (present in the table or only named)."""

    run: str
    method: Any
    arch: Any
    record: dict[str, Any] | None


def _teacher_of(student: dict[str, Any], runs: Mapping[str, dict[str, Any]]) -> _Teacher:
    name = str(_get(student, "teacher") or MISSING)
    record = runs.get(name)
    method = _get(student, "teacher_method") or (record["method"] if record else None)
    arch = _get(student, "teacher_arch") or (record["arch"] if record else None)
    return _Teacher(name, method, arch, record)


def _student_column(student: dict[str, Any]) -> str:
    """'resnet18 student', or 'resnet18 student (10% data)' for a student on a subset."""
    column = f"{student['arch']} student"
    fraction = student["dataset_fraction"]
    if not is_missing(fraction) and not is_full_data(fraction):
        column += f" ({format_fraction(float(fraction))} data)"
    return column


def _unique_student_columns(students: list[dict[str, Any]], teachers: list[_Teacher]) -> list[str]:
    """Student columns, each student's name appended where two students of a teacher share one."""
    cells = [(t.run, _student_column(s)) for s, t in zip(students, teachers)]
    return [
        f"{column} [{s['run']}]" if cells.count((t.run, column)) > 1 else column
        for s, t, (_, column) in zip(students, teachers, cells)
    ]


@dataclass(frozen=True)
class _ValueColumn:
    """A distillation column: whose accuracy it holds (the teacher's or a student's) and the model."""

    role: str  # 'teacher' or 'student'
    arch: Any
    full_data: bool


def _teacher_published(teacher: _Teacher) -> str | None:
    """The paper's number for a teacher; None for one not collected (how it trained is unknown)."""
    if teacher.record is None:
        return None
    record = teacher.record
    warmup = added_warmup(record["method"], _get(record, "warmup_epochs"), record["arch"])
    return published_top1("distillation", teacher.method, teacher.arch, record.get("strategy"), warmup, "teacher")


def _distillation_published(column: _ValueColumn, teacher: _Teacher, student: dict[str, Any] | None) -> str | None:
    """The paper's number for one cell: the teacher's own, or a full-data student's of this
    teacher (a cell without our student assumes the plain distillation recipe, as the paper's)."""
    if column.role == "teacher":
        return _teacher_published(teacher) if column.arch == teacher.arch else None
    if not column.full_data:
        return None  # the paper distils on all of ImageNet only
    strategy = student.get("strategy") if student else "iid"
    warmup = added_warmup(DISTILL, _get(student, "warmup_epochs") if student else None, column.arch)
    return published_top1("distillation", teacher.method, column.arch, strategy, warmup, "student", teacher.arch)


def _with_paper_columns(columns: Mapping[str, _ValueColumn], compare: bool) -> list[str]:
    """Each value column followed by its paper column where the paper could have a number."""
    out = []
    for name, column in columns.items():
        out += [name] + ([f"{name} {PAPER_COLUMN}"] if compare and paper_arch(column.arch) else [])
    return out


def distillation_table(table: pd.DataFrame, compare_to_paper: bool = False) -> PaperTable:
    """Supplement Table 1: one row per teacher (named by its pretraining algorithm), the teacher's
    linear top-1 and each of its students' by student architecture."""
    per_run, table = table, _settings(table)
    runs = {str(r["run"]): r for r in _records(table)}
    students = sorted(
        (r for r in runs.values() if r["method"] == DISTILL),
        key=lambda r: (arch_sort_key(r["arch"]), r["run"]),
    )
    teachers = [_teacher_of(s, runs) for s in students]
    columns: dict[str, _ValueColumn] = {}
    cells = _Cells()
    rows = cells.values
    cell_student: dict[tuple[str, str], dict[str, Any]] = {}
    for student, teacher, name in zip(students, teachers, _unique_student_columns(students, teachers)):
        label = method_name(teacher.method) if teacher.method else MISSING
        cells.row(teacher.run, **{"teacher pretraining": label, "teacher run": teacher.run})
        teacher_column = f"{teacher.arch} teacher"
        columns[teacher_column] = _ValueColumn("teacher", teacher.arch, True)
        columns[name] = _ValueColumn("student", student["arch"], is_full_data(student["dataset_fraction"]))
        cells.put(teacher.run, teacher_column, teacher.record)
        cells.put(teacher.run, name, student)
        cell_student[(teacher.run, name)] = student
    if compare_to_paper:
        by_run = {t.run: t for t in teachers}
        for run, row in rows.items():
            for name, column in columns.items():
                if paper_arch(column.arch):
                    cell = _distillation_published(column, by_run[run], cell_student.get((run, name)))
                    row[f"{name} {PAPER_COLUMN}"] = cell
    order = {t.run: (_order(t.method, METHOD_NAMES), t.run) for t in teachers}
    keys = sorted(rows, key=lambda run: order[run])  # SimSiam first, as in the paper
    columns = dict(
        sorted(columns.items(), key=lambda kv: (kv[1].role != "teacher", arch_sort_key(kv[1].arch), kv[0]))
    )
    names = ["teacher pretraining", "teacher run", *_with_paper_columns(columns, compare_to_paper)]
    frame, sd, n = cells.frames(names, keys)
    return PaperTable(
        name="distillation",
        title="Distillation (supplement Table 1)",
        notes=(
            (
                "rows: the teacher, by its pretraining algorithm; students learn to predict its representation "
                "(one added linear layer, MSE against the per-dimension normalised teacher output)"
            ),
            "columns: the teacher's own architecture, then each student architecture",
            _TOP1_NOTE,
        ),
        frame=frame,
        empty_note=(
            "No distilled students in this config: entries under `distillations:` (each naming a teacher "
            "run, e.g. a full-data ResNet-50 run) fill this table."
        ),
        numeric_columns=tuple(names[2:]),
        compared=compare_to_paper,
        sd=sd,
        n=n,
        floors=floors_line(per_run),
        probe_note=probe_note(per_run),
    )


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Rows in order, every column present (NaN where a row has no value)."""
    return pd.DataFrame.from_records(rows, columns=columns)


# --------------------------------------------------------------------------- all tables


PAPER_TABLES: dict[str, Callable[[pd.DataFrame, bool], PaperTable]] = {
    "distillation": distillation_table,
    "training_methods": training_methods_table,
    "strategies": strategies_table,
}
_SHORT_SOURCES = {
    "distillation": "supplement Table 1",
    "training_methods": "supplement Table 2",
    "strategies": "training strategies",
}


def paper_tables(table: pd.DataFrame, compare_to_paper: bool = False) -> list[PaperTable]:
    """The three paper-shaped tables of a run table, in ``TABLE_NAMES`` order."""
    return [build(table, compare_to_paper) for build in PAPER_TABLES.values()]


def index_line() -> str:
    """The line at the end of runs.md that points to the other tables."""
    links = [f"[{name}.md]({name}.md) ({source})" for name, source in _SHORT_SOURCES.items()]
    return (f"Tables in the paper's shape, beside this file: {', '.join(links)}. Whether each label-free metric "
            f"forecasts the accuracies: [{forecast.NAME}.md]({forecast.NAME}.md); every metric of every spectrum "
            f"(validation split, L2-normalised features): {METRICS_TABLE_FILE}.")


def write_result_tables(
    table: pd.DataFrame,
    out_dir: str | os.PathLike,
    compare_to_paper: bool = False,
    metrics: pd.DataFrame | None = None,
) -> list[Path]:
    """Write runs.csv/md, every paper table and the forecast (CSV + Markdown) and the long
    ``metrics`` table (``tables.metrics_table``; None: its header only) into ``out_dir``; return the
    paths in ``TABLE_FILES`` order. Every file is written, an empty table with a note saying what fills it."""
    out_dir = Path(out_dir)
    paths = [out_dir / name for name in RUN_TABLE_FILES]
    write_run_table(table, paths[0], paths[1], footer=index_line())
    for paper_table in paper_tables(table, compare_to_paper):
        paths += dataclasses.replace(paper_table, health=health_note(table) or None).write(out_dir)
    paths += forecast.write_forecast(table, out_dir)
    paths.append(out_dir / METRICS_TABLE_FILE)
    write_csv(paths[-1], metrics_table([]) if metrics is None else metrics)
    return paths
