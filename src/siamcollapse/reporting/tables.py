"""Run tables and spectrum files: the tabular record of an experiment and its Markdown summary.

A *run table* has one row per run (a pretrained, distilled or random-init model, or the
raw-pixel floor) with the columns in ``RUN_COLUMNS`` (required in every record),
``OPTIONAL_COLUMNS`` and ``LABEL_FREE_COLUMNS`` (always present in the table, null where a
record lacks them: records written before those keys existed) and any extras the records
carry. runs.csv keeps one row per run, its ``seed`` column included; every summary (runs.md,
the paper-shaped tables) first folds the seeds of a setting into one row (``summarise_seeds``:
mean, sd and n over the runs sharing a ``seed_group``). The Markdown summary is written for a
researcher who opens the results folder: it says what each metric means, puts the chance level
and the floors above the table, and states the finding in one line, computed from the table so
that it can never disagree with the numbers.

``LABEL_FREE_METRICS`` is the one place that names, cites and orients each label-free collapse
metric for every table and figure. The *metrics table* (``metrics_table``, metrics.csv) is the
long form of every run's spectrum summary: one row per run, split, features and metric.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from siamcollapse import io
from siamcollapse.metrics import LIDAR, SPECTRUM_METRICS
from siamcollapse.names import RANDOM_INIT, RAW_PIXELS
from siamcollapse.reporting.health import HEALTH, OK, UNHEALTHY_MARK, health_note
from siamcollapse.spectrum_csv import SPECTRUM_VARIANTS

RUN_COLUMNS = [
    "run",
    "method",
    "arch",
    "dataset_fraction",
    "strategy",
    "auc",
    "linear_top1",
    "knn_top1",
]
# Keys of newer run records; a record without them (an older run) reads as null, never an error.
OPTIONAL_COLUMNS = ["seed", "seed_group", "group", "epochs", "warmup_epochs", "switch_epoch", "teacher", "teacher_method",
                    "teacher_arch", "num_classes"]
# The headline label-free metrics besides the AUC (training split, raw features), null where a run's
# spectrum summary predates them.
LABEL_FREE_COLUMNS = ["effective_rank", *(m for m in (*SPECTRUM_METRICS, LIDAR) if m not in RUN_COLUMNS)]
FLOOR_METHODS = (RANDOM_INIT, RAW_PIXELS)  # untrained references: no data fraction, no trend
# Metrics averaged over seeds; each gets a '<metric>_sd' column in the summary (NaN for n = 1).
METRICS = [*SPECTRUM_METRICS, LIDAR, "effective_rank", "linear_top1", "knn_top1", "knn_top1_k200"]
SD_SUFFIX = "_sd"
N_SEEDS = "n_seeds"
UNHEALTHY = "unhealthy_seeds"  # in a seed summary: how many of its runs are collapsed or diverged
GROUP_COLUMNS = ["method", "arch", "strategy"]
# Sort keys (and the value that stands for null) before the fraction: group first, then runs
# that differ only in warmup, hybrid switch or teacher stay apart.
_SORT_FILLS: dict[str, Any] = {
    **dict.fromkeys(GROUP_COLUMNS, ""),
    "warmup_epochs": 0.0,
    "switch_epoch": 0.0,
    "teacher": "",
}

_NUMERIC_COLUMNS = ["dataset_fraction", "auc", "linear_top1", "knn_top1", "epochs", "warmup_epochs", "switch_epoch",
                    "seed", "num_classes", *LABEL_FREE_COLUMNS]
MISSING = "—"  # how every table shows an absent value


# --------------------------------------------------------------------------- label-free metrics


@dataclass(frozen=True)
class LabelFreeMetric:
    """How a label-free collapse metric is named, oriented and cited wherever it is shown.

    ``less_collapse`` is +1 where a higher value means less collapse, -1 where a lower one does;
    it is also the sign a correlation with accuracy should have if the metric forecasts it.
    """

    key: str
    name: str
    less_collapse: int
    decimals: int
    note: str  # what it is and its reference, for the notes of a table

    @property
    def direction(self) -> str:
        return "higher = less collapse" if self.less_collapse > 0 else "lower = less collapse"

    @property
    def axis_label(self) -> str:
        """'AUC (lower = less collapse)': a figure's axis says which way is better."""
        return f"{self.name} ({self.direction})"


LABEL_FREE_METRICS = {
    metric.key: metric
    for metric in (
        LabelFreeMetric("auc", "AUC", -1, 3, (
            "area under the cumulative explained variance of the singular values of the centred "
            "representation matrix (Li et al. 2022, paper Eq. 2); 0.5 = flat spectrum, 1.0 = rank one")),
        LabelFreeMetric("rankme", "RankMe", +1, 1, (
            "exp of the entropy of the singular values normalised to sum 1 (Garrido et al. 2023), from 1 "
            "(rank one) to d (flat); it is the effective rank (Roy & Vetterli 2007, runs.csv's effective_rank) "
            "up to its eps of 1e-7")),
        LabelFreeMetric("alpha_req", "α-ReQ", -1, 2, (
            "minus the slope of log eigenvalue against log index, indices 5 to 100 (Agrawal et al. 2022); "
            "larger = faster decay; accuracy peaks near 1, so the ordering holds above 1; missing where the "
            "spectrum has too few non-zero eigenvalues in that range")),
        LabelFreeMetric("nesum", "NESum", +1, 1, (
            "sum of the covariance eigenvalues over the largest one (He & Ozay 2022), from 1 to d")),
        LabelFreeMetric(LIDAR, "LiDAR", +1, 1, (
            "effective rank of the between-image covariance of augmented views' embeddings, whitened by the "
            "within-image covariance (Thilak et al. 2024), from 1 to d: directions that tell images apart "
            "beyond what augmentation changes; on a sample of training images")),
    )
}
assert tuple(LABEL_FREE_METRICS) == (*SPECTRUM_METRICS, LIDAR)


# --------------------------------------------------------------------------- run table


def _check_record(index: int, record: dict[str, Any]) -> None:
    """Fail on the first missing key, naming the run (or its position) and the key."""
    if not isinstance(record, dict):
        raise TypeError(f"run record #{index} is a {type(record).__name__}, not a dict")
    name = record.get("run", f"#{index}")
    for key in RUN_COLUMNS:
        if key not in record:
            raise ValueError(f"run record {name!r} is missing the required key {key!r}")


def _check_values(table: pd.DataFrame) -> None:
    """Reject what would silently corrupt plots: duplicate names, fractions outside (0, 1]."""
    duplicated = table.loc[table["run"].duplicated(), "run"].tolist()
    if duplicated:
        raise ValueError(f"run names must be unique; repeated: {sorted(set(duplicated))}")
    trained = table[~is_baseline(table)]
    bad = trained[~((trained["dataset_fraction"] > 0) & (trained["dataset_fraction"] <= 1))]
    if not bad.empty:
        row = bad.iloc[0]
        raise ValueError(f"run {row['run']!r}: dataset_fraction must be in (0, 1], got {row['dataset_fraction']}")


def is_baseline(table: pd.DataFrame) -> pd.Series:
    """Boolean mask of the floors (random-init and raw-pixel rows): untrained, every method must beat them."""
    return table["method"].isin(FLOOR_METHODS)


def is_random_init(table: pd.DataFrame) -> pd.Series:
    return table["method"] == RANDOM_INIT


def is_raw_pixels(table: pd.DataFrame) -> pd.Series:
    return table["method"] == RAW_PIXELS


def _filled(table: pd.DataFrame, column: str, fill: Any) -> pd.Series:
    """``column`` with nulls as ``fill`` (a record without the key had none), all ``fill`` if absent."""
    if column not in table.columns:
        return pd.Series(fill, index=table.index)
    return table[column].astype(object).where(table[column].notna(), fill)


def sort_run_table(table: pd.DataFrame) -> pd.DataFrame:
    """Order rows by group then fraction, random-init last, so that tables read as a trend."""
    keys = {"_baseline": is_baseline(table)}
    keys |= {f"_{column}": _filled(table, column, fill) for column, fill in _SORT_FILLS.items()}
    keyed = table.assign(**keys).sort_values([*keys, "dataset_fraction", "run"], kind="stable")
    return keyed.drop(columns=list(keys)).reset_index(drop=True)


def build_run_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Validate run records and return the sorted run table.

    Columns: ``RUN_COLUMNS``, then ``OPTIONAL_COLUMNS`` and ``LABEL_FREE_COLUMNS`` (NaN where a
    record lacks one), then any other keys in first-seen order.
    """
    for index, record in enumerate(records):
        _check_record(index, record)
    known = RUN_COLUMNS + OPTIONAL_COLUMNS + LABEL_FREE_COLUMNS
    extras: list[str] = []
    for record in records:
        extras += [key for key in record if key not in known and key not in extras]
    table = pd.DataFrame.from_records(list(records), columns=known + extras)
    for column in _NUMERIC_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="raise").astype(float)
    _check_values(table)
    return sort_run_table(table)


def seed_groups(table: pd.DataFrame) -> pd.Series:
    """Each row's seed group; a record without one (an older run) is its own group."""
    return _filled(table, "seed_group", None).where(lambda g: g.notna(), table["run"]).astype(str)


def summarise_seeds(table: pd.DataFrame) -> pd.DataFrame:
    """One row per setting: the runs sharing a ``seed_group`` folded into their mean.

    ``run`` becomes the seed group, ``METRICS`` their mean over seeds, ``<metric>_sd`` the sample
    sd (NaN with one seed), ``n_seeds`` the count and ``seeds`` the seeds ('0, 1'). Every other
    column keeps its first row's value, except ``teacher``, which names the teacher's own seed
    group (students of paired seeds share one teacher setting). Rows stay in the table's order.
    """
    groups = seed_groups(table)
    group_of_run = dict(zip(table["run"].astype(str), groups))
    metrics = [m for m in METRICS if m in table.columns]
    rows = []
    for group, members in table.groupby(groups, sort=False):
        row = members.iloc[0].to_dict()
        row["run"] = group
        for metric in metrics:
            values = pd.to_numeric(members[metric], errors="coerce").dropna()
            row[metric] = values.mean() if len(values) else math.nan
            row[metric + SD_SUFFIX] = values.std(ddof=1) if len(values) > 1 else math.nan
        row[N_SEEDS] = len(members)
        row[UNHEALTHY] = int((members[HEALTH] != OK).sum()) if HEALTH in members else 0
        seeds = members["seed"].dropna() if "seed" in members.columns else pd.Series(dtype=float)
        row["seeds"] = ", ".join(f"{seed:g}" for seed in seeds) if len(seeds) else MISSING
        if not is_missing(row.get("teacher")):
            row["teacher"] = group_of_run.get(str(row["teacher"]), row["teacher"])
        rows.append(row)
    return pd.DataFrame.from_records(rows).reset_index(drop=True) if rows else table.assign(**{N_SEEDS: []})


def format_mean_sd(mean: Any, sd: Any = None, n: Any = None, decimals: int = 1) -> str:
    """'13.3 ± 1.2 (n=2)' over seeds; a single run (n = 1, no sd) is plain '13.3'; missing -> '—'."""
    if is_missing(mean):
        return MISSING
    text = f"{float(mean):.{decimals}f}"
    if not is_missing(sd):
        text += f" ± {float(sd):.{decimals}f}"
    return text if is_missing(n) or int(n) <= 1 else f"{text} (n={int(n)})"


def chance_top1(table: pd.DataFrame) -> float | None:
    """The chance level (%) of a top-1 accuracy: 100 / classes, as the probes recorded it."""
    classes = table["num_classes"].dropna() if "num_classes" in table.columns else pd.Series(dtype=float)
    return 100.0 / float(classes.iloc[0]) if len(classes) else None


def _floor_values(rows: pd.DataFrame, column: str) -> str:
    values = pd.to_numeric(rows[column], errors="coerce").dropna() if column in rows.columns else pd.Series(dtype=float)
    if values.empty:
        return MISSING
    return format_mean_sd(values.mean(), values.std(ddof=1) if len(values) > 1 else None, len(values))


def floors_line(table: pd.DataFrame) -> str:
    """What every accuracy must beat: chance, the random-init floor of each arch and raw pixels.

    'Floors: chance 10.0 %; random init resnet18: linear 17.1 ± 0.2 (n=3), kNN 15.0 ± 0.4 (n=3);
    raw pixels: linear 11.2, kNN 12.0.' ``table`` is the per-run table (sd over seeds).
    """
    chance = chance_top1(table)
    parts = [f"chance {chance:.1f} %" if chance is not None else f"chance {MISSING}"]
    for arch, rows in table[is_random_init(table)].groupby("arch", sort=True):
        parts.append(f"random init {arch}: linear {_floor_values(rows, 'linear_top1')}, "
                     f"kNN {_floor_values(rows, 'knn_top1')}")
    pixels = table[is_raw_pixels(table)]
    if not pixels.empty:
        parts.append(f"raw pixels: linear {_floor_values(pixels, 'linear_top1')}, kNN {_floor_values(pixels, 'knn_top1')}")
    else:
        parts.append("raw pixels: not run (raw_pixels.enabled)")
    return "**Floors** (top-1 %, mean ± sd over seeds): " + "; ".join(parts) + "."


def read_run_table(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read a run table written by ``write_run_table`` (validated and sorted again)."""
    table = pd.read_csv(csv_path)
    return build_run_table(table.to_dict(orient="records"))


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Correlation:
    """Pearson and Spearman correlation of two columns over ``n`` runs."""

    pearson: float
    spearman: float
    n: int


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(x, y)[0, 1])


def correlation(x: Iterable[float], y: Iterable[float]) -> Correlation | None:
    """Both correlations of finite pairs; None below 3 pairs or for a constant column."""
    frame = pd.DataFrame({"x": list(x), "y": list(y)}, dtype=float).dropna()
    if len(frame) < 3 or frame["x"].nunique() < 2 or frame["y"].nunique() < 2:
        return None
    ranks = frame.rank(method="average")
    return Correlation(
        pearson=_pearson(frame["x"].to_numpy(), frame["y"].to_numpy()),
        spearman=_pearson(ranks["x"].to_numpy(), ranks["y"].to_numpy()),
        n=len(frame),
    )


def auc_accuracy_correlation(table: pd.DataFrame, accuracy: str = "linear_top1") -> Correlation | None:
    """Correlation of AUC with an accuracy over trained runs (random-init excluded: it is no
    point on the data-size trend, and its far-off accuracy would dominate the coefficient)."""
    trained = table[~is_baseline(table)]
    return correlation(trained["auc"], trained[accuracy])


# --------------------------------------------------------------------------- Markdown


def format_fraction(fraction: float) -> str:
    """0.01 -> '1%', 0.005 -> '0.5%': the way the paper names its subsets."""
    if fraction is None or not math.isfinite(fraction):
        return MISSING
    return f"{100 * fraction:g}%"


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a cell with no value (strings and numbers are never missing)."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _number(decimals: int) -> Callable[[Any], str]:
    def fmt(value: Any) -> str:
        return MISSING if is_missing(value) else f"{float(value):.{decimals}f}"

    return fmt


def format_number(value: Any, decimals: int = 1) -> str:
    """30.012 -> '30.0'; missing -> '—'."""
    return _number(decimals)(value)


def format_text(value: Any) -> str:
    """A cell's text with pipes escaped (they would split the Markdown cell); missing -> '—'."""
    return MISSING if is_missing(value) else str(value).replace("|", "\\|")


def _epochs(value: Any) -> str:
    """Warmup or switch epochs: '10', or '—' where the run has none."""
    return MISSING if is_missing(value) or float(value) == 0 else f"{float(value):g}"


@dataclass(frozen=True)
class _Column:
    key: str
    header: str
    fmt: Callable[[Any], str]
    numeric: bool
    optional: bool = False  # shown only when some run has a value (so old tables look as before)


_MARKDOWN_COLUMNS = [
    _Column("run", "run", format_text, False),
    _Column("method", "method", format_text, False),
    _Column("arch", "arch", format_text, False),
    _Column("strategy", "strategy", format_text, False),
    _Column("dataset_fraction", "data", format_fraction, True),
    _Column("warmup_epochs", "warmup (epochs)", _epochs, True, optional=True),
    _Column("switch_epoch", "hybrid K", _epochs, True, optional=True),
    _Column("teacher", "teacher", format_text, False, optional=True),
    _Column(N_SEEDS, "n", _number(0), True),
    _Column("seeds", "seeds", format_text, False, optional=True),
    # the label-free metrics; runs.csv also keeps effective_rank, which RankMe equals up to its eps
    *(_Column(m.key, m.name, _number(m.decimals), True) for m in LABEL_FREE_METRICS.values()),
    _Column("linear_top1", "linear top-1 (%)", _number(1), True),
    _Column("knn_top1", "kNN top-1 (%)", _number(1), True),
    _Column("knn_top1_k200", "kNN top-1 k=200 (%)", _number(1), True),
]
_DECIMALS = {m.key: m.decimals for m in LABEL_FREE_METRICS.values()}

_METRIC_NOTES = [
    ("- **" + ", ".join(m.name for m in LABEL_FREE_METRICS.values()) + "**: label-free collapse metrics of the "
     "training set's backbone features as extracted (raw, not L2-normalised); metrics.csv has them for the "
     "validation split and the L2-normalised features too, forecast.md how well each forecasts the accuracies."),
    *(f"- **{m.name}**: {m.note}; {m.direction}." for m in LABEL_FREE_METRICS.values()),
    "- **linear top-1**: top-1 accuracy (%) of a linear classifier on frozen features.",
    "- **kNN top-1**: top-1 accuracy (%) of a weighted k-nearest-neighbour classifier (cosine){knn_k}.",
    "- **data**: fraction of the training set used for pretraining (random-init and raw pixels: untrained).",
    ("- **n**, **seeds**: the pretraining (or init) seeds of the row; metrics are mean ± sample sd over them "
     "(one row per run, with its seed, in runs.csv)."),
    ("- **raw-pixels**: the same probes on the eval-transformed pixels, flattened (no backbone; cached linear "
     "probe); its AUC is that of the pixels' spectrum."),
]
_OPTIONAL_NOTE = (
    "- **warmup**: epochs of linear lr warmup; **hybrid K**: single-pass epochs before IID; "
    "**teacher**: the run a distilled student learns to predict."
)


def _cell(row: pd.Series, col: _Column) -> str:
    if row["method"] in FLOOR_METHODS and col.key == "dataset_fraction":
        return MISSING
    if col.key == "run" and row.get(UNHEALTHY, 0):  # a setting with a collapsed or diverged seed
        return f"{format_text(row['run'])} {UNHEALTHY_MARK}"
    sd = col.key + SD_SUFFIX
    if sd in row.index:  # a metric averaged over seeds: mean ± sd
        return format_mean_sd(row[col.key], row[sd], decimals=_DECIMALS.get(col.key, 1))
    return col.fmt(row[col.key])


def _cells(row: pd.Series, columns: list[_Column]) -> list[str]:
    return [_cell(row, col) for col in columns]


def pipe_table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Sequence[bool]) -> str:
    """A GitHub pipe table of already formatted cells; numeric columns right-aligned."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---:" if right else "---" for right in numeric) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _shown(column: _Column, table: pd.DataFrame) -> bool:
    if column.key not in table.columns:
        return False
    return not column.optional or any(column.fmt(value) != MISSING for value in table[column.key])


def _markdown_columns(table: pd.DataFrame) -> list[_Column]:
    return [col for col in _MARKDOWN_COLUMNS if _shown(col, table)]


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub pipe table of the run table, numbers formatted, numeric columns right-aligned."""
    columns = _markdown_columns(table)
    return pipe_table(
        [col.header for col in columns],
        (_cells(row, columns) for _, row in table.iterrows()),
        [col.numeric for col in columns],
    )


def _correlation_sentence(table: pd.DataFrame) -> str | None:
    corr = auc_accuracy_correlation(table)
    if corr is None:
        return None
    # Descriptive only: whether the correlation supports a forecast is forecast.md's verdict, which
    # has an interval over settings (a point estimate over a dozen runs supports no claim).
    return (
        f"across {corr.n} trained runs, AUC and linear top-1 correlate with Pearson "
        f"r = {corr.pearson:+.2f} (Spearman ρ = {corr.spearman:+.2f}; whether that is a forecast, "
        "with its interval: forecast.md)"
    )


def _baseline_sentence(table: pd.DataFrame) -> str | None:
    """The best trained setting (mean over its seeds) against the random-init floor of its arch."""
    summary = summarise_seeds(table)
    trained = summary[~is_baseline(summary)].dropna(subset=["linear_top1"])
    if trained.empty:
        return None
    best = trained.loc[trained["linear_top1"].idxmax()]
    floor = table[is_random_init(table) & (table["arch"] == best["arch"])]["linear_top1"].dropna()
    if floor.empty:
        return None
    gain = best["linear_top1"] - floor.mean()
    verb = "beats" if gain > 0 else "does not beat"
    seeds = f", mean of {int(best[N_SEEDS])} seeds" if best[N_SEEDS] > 1 else ""
    ours = format_mean_sd(best["linear_top1"], best.get("linear_top1" + SD_SUFFIX), best[N_SEEDS])
    theirs = format_mean_sd(floor.mean(), floor.std(ddof=1) if len(floor) > 1 else None, len(floor))
    caveat = "; a single run has no sd: the gap may be seed noise" if best[N_SEEDS] <= 1 or len(floor) <= 1 else ""
    return (
        f"the best trained run ({best['run']}, {format_fraction(best['dataset_fraction'])} data{seeds}) "
        f"{verb} random-init {best['arch']} by {gain:+.1f} points of linear top-1 ({ours} % vs {theirs} %{caveat})"
    )


def finding_line(table: pd.DataFrame) -> str:
    """One line stating what the numbers show, derived from the table itself."""
    parts = [s for s in (_correlation_sentence(table), _baseline_sentence(table)) if s]
    if not parts:
        return "**Finding:** too few evaluated runs to state a trend."
    body = "; ".join(parts)
    return f"**Finding:** {body[0].upper()}{body[1:]}."


def _knn_k_note(table: pd.DataFrame) -> str:
    """The k of the table's knn_top1 column, as recorded by the kNN stage."""
    if "knn_k" not in table.columns or table["knn_k"].dropna().empty:
        return ""
    return f" at k = {int(table['knn_k'].dropna().iloc[0])}"


def _notes(table: pd.DataFrame) -> str:
    notes = "\n".join(_METRIC_NOTES).format(knn_k=_knn_k_note(table))
    if any(col.optional and col.key != "seeds" for col in _markdown_columns(table)):
        notes += "\n" + _OPTIONAL_NOTE
    return notes


def run_table_markdown(
    table: pd.DataFrame, title: str = "Dimensional collapse: run summary", footer: str | None = None
) -> str:
    """The whole Markdown summary of the per-run ``table``: title, metric notes, the chance level
    and floors, one row per setting (mean ± sd over its seeds), finding (and ``footer`` last)."""
    note = health_note(table)
    parts = [f"# {title}", _notes(table), floors_line(table), markdown_table(summarise_seeds(table)),
             *([note] if note else []), finding_line(table)]
    return "\n\n".join(parts + ([footer] if footer else [])) + "\n"


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a table as CSV atomically (no index column)."""
    with io.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_run_table(
    table: pd.DataFrame,
    csv_path: str | os.PathLike,
    markdown_path: str | os.PathLike,
    footer: str | None = None,
) -> None:
    """Write the CSV (machine-readable) and the Markdown summary (human-readable), atomically."""
    write_csv(csv_path, table)
    io.write_text(markdown_path, run_table_markdown(table, footer=footer))


# --------------------------------------------------------------------------- metrics table (long format)


METRICS_TABLE_COLUMNS = ["run", "method", "arch", "seed", "seed_group", "split", "features", "metric", "value"]
# The metrics of each spectrum variant ('<split>_<raw|l2>': raw features, or each scaled to unit
# norm); LiDAR (of augmented views, training images only) comes apart.
VARIANT_METRICS = (*SPECTRUM_METRICS, "effective_rank")
_LIDAR_KEYS = {"raw": LIDAR, "l2": f"{LIDAR}_l2"}
_HEADLINE = ("train", "raw")  # what a spectrum summary without ``variants`` (an older one) describes


def _value(value: Any) -> float:
    """A metric as a float, NaN where the summary has null (the metric is undefined there)."""
    return math.nan if value is None else float(value)


def spectrum_metric_rows(record: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The long-format rows of one run: ``record`` names it (run.json), ``summary`` is its spectrum.json.

    With ``variants`` (train/val x raw/l2): every ``VARIANT_METRICS`` entry of each, in
    ``SPECTRUM_VARIANTS`` order; without (an older summary): the headline metrics it has. Then
    LiDAR (training images, raw and l2) where the summary has it.
    """
    ids = {key: record.get(key) for key in METRICS_TABLE_COLUMNS[:5]}

    def rows_of(values: dict[str, Any], split: str, features: str, keys: Iterable[str]) -> list[dict[str, Any]]:
        return [{**ids, "split": split, "features": features, "metric": metric, "value": _value(values[metric])}
                for metric in keys if metric in values]

    variants = summary.get("variants")
    if variants:
        rows = [row for variant in SPECTRUM_VARIANTS
                for row in rows_of(variants.get(variant, {}), *variant.split("_", 1), VARIANT_METRICS)]
    else:
        split = summary.get("split", _HEADLINE[0])
        rows = rows_of(summary, split, summary.get("features", _HEADLINE[1]), VARIANT_METRICS)
    for features, key in _LIDAR_KEYS.items():
        rows += [{**row, "metric": LIDAR} for row in rows_of(summary, _HEADLINE[0], features, [key])]
    return rows


def metrics_table(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The rows of ``spectrum_metric_rows`` of every run as one frame (``METRICS_TABLE_COLUMNS``)."""
    table = pd.DataFrame.from_records(list(rows), columns=METRICS_TABLE_COLUMNS)
    table["value"] = pd.to_numeric(table["value"]).astype(float)
    return table
