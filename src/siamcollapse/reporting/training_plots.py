"""Figures of collapse over training and of its forecast: the last three of ``layout.FIGURE_NAMES``.

- tracked_metrics: each label-free spectrum metric (``metrics.SPECTRUM_METRICS``) against the
  epoch, one line per trained run (every seed), as the training loop tracked it on a fixed
  sample of training images every ``pretrain.track_every`` epochs;
- collapse_over_training: the same as mean ± sd bands over the seeds of each setting, the
  methods compared in one row (IID, full data) and SimSiam's strategies and data sizes in the next;
- forecast: every label-free metric against linear top-1, one point per run, titled with the
  pooled Spearman rho and its interval from ``forecast.forecast_table`` (the table's numbers).

Colour is the method's (``plots.METHOD_COLORS``) and the dash tells a method's settings apart,
as in the spectrum figures; the random-init floor is grey and dashed (a line: its value on the
full training set from the run table) or a grey X (a point). ``make_all_figures`` writes these
and ``plots``' seven, every one even with nothing to draw (the axes then say why), so that a
workflow can declare them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from siamcollapse.layout import FIGURE_NAMES, run_group_figure
from siamcollapse.metrics import SPECTRUM_METRICS
from siamcollapse.names import RANDOM_INIT
from siamcollapse.reporting import forecast
from siamcollapse.reporting.paper import arch_sort_key, is_full_data, method_name, training_sort_key
from siamcollapse.reporting.plots import (
    BASELINE_STYLE,
    METHOD_COLORS,
    METHOD_MARKERS,
    OUTSIDE_LEGEND,
    SPECTRUM_FIGURE_NAMES,
    accuracy_floor_lines,
    baseline_lines,
    figure,
    make_spectrum_figures,
    marker_handle,
    method_marker,
    scatter_baselines,
    series_title,
    styles_by_method,
    styles_by_training,
)
from siamcollapse.reporting.tables import LABEL_FREE_METRICS, format_fraction, is_raw_pixels, seed_groups

TrainLogs = Mapping[str, pd.DataFrame]  # run -> its train log (``read_train_log``)
NO_TRACKING = "no tracked metrics: pretrain.track_every is 0"
SIMSIAM = "simsiam"  # the method whose strategies and data sizes the paper compares
_PANEL = (4.0, 3.4)  # inches per panel
# The training curves of a run group's report page besides the tracked metrics: train_log.csv
# columns and their axis labels.
GROUP_CURVES = {"loss": "loss", "lr": "learning rate", "z_std": "std of the L2-normalised projections",
                "z_std_healthy": None}  # the healthy level 1/sqrt(d), drawn in the z_std panel


# --------------------------------------------------------------------------- train logs


def read_train_log(path: str | os.PathLike) -> pd.DataFrame:
    """``epoch``, the ``GROUP_CURVES`` and the ``SPECTRUM_METRICS`` of a train_log.csv, as floats.

    An epoch that was not tracked has empty cells (NaN), a log from before the tracking has no
    such columns (all NaN) and the random-init floor's log has a header only (no rows).
    """
    try:
        log = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        log = pd.DataFrame()
    columns = ["epoch", *GROUP_CURVES, *SPECTRUM_METRICS]
    return pd.DataFrame({c: pd.to_numeric(log[c], errors="coerce") if c in log else np.nan for c in columns},
                        index=log.index, columns=columns).astype(float)


def _tracked(table: pd.DataFrame, logs: TrainLogs) -> dict[str, pd.DataFrame]:
    """The logs of the table's trained runs that hold a tracked value, in table order."""
    trained = forecast.trained_runs(table)["run"].astype(str)
    return {run: logs[run] for run in trained if run in logs and logs[run][list(SPECTRUM_METRICS)].notna().any().any()}


# --------------------------------------------------------------------------- settings


def _settings(table: pd.DataFrame, runs: list[str]) -> dict[str, dict[str, Any]]:
    """Seed group -> its record (first run's) and runs, for the settings of ``runs``, in the paper's order."""
    groups = dict(zip(table["run"].astype(str), seed_groups(table)))
    records = {str(r["run"]): r for r in table.to_dict(orient="records")}
    settings: dict[str, dict[str, Any]] = {}
    for run in runs:
        entry = settings.setdefault(groups[run], {"info": records[run], "runs": []})
        entry["runs"].append(run)

    def order(group: str) -> tuple:
        info = settings[group]["info"]
        return arch_sort_key(info["arch"]), training_sort_key(info), float(info["dataset_fraction"]), group

    return {g: settings[g] for g in sorted(settings, key=order)}


def _setting_label(info: Mapping[str, Any], n_seeds: int) -> str:
    """'SimSiam IID · resnet18 · 10% (3 seeds)'."""
    seeds = f" ({n_seeds} seeds)" if n_seeds > 1 else ""
    return f"{series_title(info)} · {format_fraction(info['dataset_fraction'])}{seeds}"


def _handles(settings: Mapping[str, dict[str, Any]], styles: Mapping[str, dict[str, Any]]) -> list[Line2D]:
    return [Line2D([], [], **styles[g], label=_setting_label(s["info"], len(s["runs"]))) for g, s in settings.items()]


def _reference_handle() -> Line2D:
    return Line2D([], [], **BASELINE_STYLE, label="random init (full training set)")


def _metric_axes(ax: Any, table: pd.DataFrame, metric: str, top: bool = True, bottom: bool = True) -> None:
    """A panel of one tracked metric: labels, grid and the random-init floor's final value."""
    info = LABEL_FREE_METRICS[metric]
    baseline_lines(ax, table, metric, decimals=info.decimals)
    if bottom:
        ax.set_xlabel("epoch")
    ax.set_ylabel(info.axis_label)
    if top:
        ax.set_title(info.name)
    ax.grid(True, alpha=0.3)


def _say(ax: Any, text: str) -> None:
    """A note in the middle of an empty panel, on white so that no reference line crosses it."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.3", fontsize="small",
            wrap=True, zorder=5, bbox={"facecolor": "white", "edgecolor": "0.8", "boxstyle": "round"})


# --------------------------------------------------------------------------- tracked metrics


def plot_tracked_metrics(table: pd.DataFrame, logs: TrainLogs, path: str | os.PathLike) -> None:
    """Each tracked metric against the epoch, one line per trained run (a setting's seeds share
    colour and dash); runs without tracked values are left out, and with none at all each panel says so."""
    tracked = _tracked(table, logs)
    settings = _settings(table, list(tracked))
    styles = styles_by_method(list(settings), {g: s["info"] for g, s in settings.items()})
    ncols = len(SPECTRUM_METRICS)
    with figure(path, 1, ncols, figsize=(_PANEL[0] * ncols + 3.0, _PANEL[1] + 0.6)) as (fig, axes):
        for ax, metric in zip(axes[0], SPECTRUM_METRICS):
            for group, setting in settings.items():
                for run in setting["runs"]:
                    points = tracked[run][["epoch", metric]].dropna()
                    ax.plot(points["epoch"], points[metric], marker=".", markersize=4, alpha=0.85, **styles[group])
            if not tracked:
                _say(ax, NO_TRACKING)
            _metric_axes(ax, table, metric)
        fig.legend(handles=[*_handles(settings, styles), _reference_handle()], loc="outside right upper",
                   fontsize="small", title="run (every seed; colour = method)", title_fontsize="small")
        fig.suptitle("Label-free collapse metrics during pretraining (a fixed sample of training images)")


# --------------------------------------------------------------------------- collapse over training


def _band(ax: Any, logs: list[pd.DataFrame], metric: str, style: Mapping[str, Any]) -> None:
    """The mean over the seeds at each tracked epoch, and ± sd as a band where there are several."""
    values = pd.concat([log[["epoch", metric]].dropna() for log in logs]).groupby("epoch")[metric]
    mean, sd = values.mean(), values.std(ddof=1)
    ax.plot(mean.index, mean.to_numpy(), marker=".", markersize=4, **style)
    if sd.notna().any():
        ax.fill_between(mean.index, (mean - sd).to_numpy(), (mean + sd).to_numpy(), color=style["color"], alpha=0.18,
                        linewidth=0)


@dataclass(frozen=True)
class _Row:
    """One row of collapse_over_training: which settings it compares and how their lines differ."""

    title: str
    include: Callable[[Mapping[str, Any]], bool]
    styles: Callable[[list[str], Mapping[str, Mapping[str, Any]]], dict[str, dict[str, Any]]]


_ROWS = (
    _Row("methods · IID · full training set",
         lambda info: info["strategy"] == "iid" and is_full_data(info["dataset_fraction"]), styles_by_method),
    _Row(f"{method_name(SIMSIAM)} · strategies and data sizes", lambda info: info["method"] == SIMSIAM,
         styles_by_training),
)


def plot_collapse_over_training(table: pd.DataFrame, logs: TrainLogs, path: str | os.PathLike) -> None:
    """The paper's collapse story over time: per setting the mean ± sd over its seeds of each tracked
    metric, the methods in one row and SimSiam's strategies and data sizes in the next (a row
    without tracked settings is left out; with none at all one row says so)."""
    tracked = _tracked(table, logs)
    settings = _settings(table, list(tracked))
    rows = [(row, {g: s for g, s in settings.items() if row.include(s["info"])}) for row in _ROWS]
    rows = [(row, members) for row, members in rows if members] or [(_ROWS[0], {})]
    ncols = len(SPECTRUM_METRICS)
    size = (_PANEL[0] * ncols + 3.5, (_PANEL[1] + 0.4) * len(rows) + 0.6)
    with figure(path, len(rows), ncols, figsize=size, sharex=True) as (fig, axes):
        for r, (row, members) in enumerate(rows):
            styles = row.styles(list(members), {g: s["info"] for g, s in members.items()})
            for ax, metric in zip(axes[r], SPECTRUM_METRICS):
                for group, setting in members.items():
                    _band(ax, [tracked[run] for run in setting["runs"]], metric, styles[group])
                if not members:
                    _say(ax, NO_TRACKING)
                _metric_axes(ax, table, metric, top=r == 0, bottom=r == len(rows) - 1)
            axes[r, -1].legend(handles=[*_handles(members, styles), _reference_handle()], fontsize="small",
                               title=row.title, title_fontsize="small", **OUTSIDE_LEGEND)
        fig.suptitle("Collapse over training: mean ± sd over the seeds of each setting (tracked sample)")


# --------------------------------------------------------------------------- run groups


def plot_run_group(table: pd.DataFrame, logs: TrainLogs, group: str, path: str | os.PathLike) -> None:
    """One run group's pretraining curves, its page of the Snakemake report: loss, lr and z_std
    (with its healthy level) per epoch, then each tracked metric, one line per run (a setting's
    seeds share colour; the settings differ in data size, strategy or schedule)."""
    trained = forecast.trained_runs(table)
    members = trained[trained["group"] == group] if "group" in trained else trained.iloc[:0]
    runs = [str(run) for run in members["run"] if str(run) in logs]
    settings = _settings(table, runs)
    styles = styles_by_training(list(settings), {g: s["info"] for g, s in settings.items()})
    panels = [column for column, label in GROUP_CURVES.items() if label] + list(SPECTRUM_METRICS)
    ncols = 4
    nrows = -(-len(panels) // ncols)
    with figure(path, nrows, ncols, figsize=(_PANEL[0] * ncols + 3.0, _PANEL[1] * nrows + 0.6)) as (fig, axes):
        for ax, column in zip(axes.flat, panels):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
            for key, setting in settings.items():
                for run in setting["runs"]:
                    points = logs[run].reindex(columns=["epoch", column]).dropna()  # a log may lack a column
                    ax.plot(points["epoch"], points[column], marker=".", markersize=3, alpha=0.85, **styles[key])
            if column in SPECTRUM_METRICS:
                _metric_axes(ax, table, column, bottom=True)
                if not any(logs[run].reindex(columns=[column])[column].notna().any() for run in runs):
                    _say(ax, NO_TRACKING)
                continue
            if column == "z_std":
                healthy = [logs[run].reindex(columns=["z_std_healthy"])["z_std_healthy"].dropna() for run in runs]
                for level in sorted({float(values.iloc[-1]) for values in healthy if len(values)}):
                    ax.axhline(level, **BASELINE_STYLE)
            ax.set(title=column, xlabel="epoch", ylabel=GROUP_CURVES[column])
            ax.grid(True, alpha=0.3)
        for ax in axes.flat[len(panels):]:
            ax.set_axis_off()
        healthy = Line2D([], [], **BASELINE_STYLE, label="z_std healthy (1/sqrt d); metrics: random init")
        fig.legend(handles=[*_handles(settings, styles), healthy], loc="outside right upper", fontsize="small",
                   title=f"run group {group} (every seed)", title_fontsize="small")
        fig.suptitle(f"Pretraining of run group {group}: loss, lr and z_std each epoch, the collapse metrics on "
                     "the tracked sample")


# --------------------------------------------------------------------------- forecast


def _method_colors(methods: list[str]) -> dict[str, Any]:
    """The method colours of the spectrum figures (one of its own for a method without one)."""
    styles = styles_by_method(methods, {m: {"method": m} for m in methods})
    return {m: styles[m]["color"] for m in methods}


def _method_order(method: str) -> tuple:
    known = list(METHOD_COLORS)
    return (known.index(method), "") if method in known else (len(known), method)


def _forecast_title(metric: str, cell: Mapping[str, Any] | None, arch: str | None) -> str:
    """'AUC: ρ = −0.62 [−0.91, −0.20], n = 12 · forecasts' from the forecast table's pooled row."""
    name = LABEL_FREE_METRICS[metric].name
    prefix = f"{arch} · {name}" if arch else name
    if cell is None or cell["n_runs"] < forecast.MIN_RUNS:
        return f"{prefix}: too few runs"
    if pd.isna(cell["spearman"]):
        return f"{prefix}: no ρ (a constant variable)\nn = {int(cell['n_runs'])} · {cell['verdict']}"
    rho = forecast.format_estimate(cell["spearman"], cell["spearman_low"], cell["spearman_high"])
    return f"{prefix}: ρ = {rho}\nn = {int(cell['n_runs'])} · {cell['verdict']}"


def plot_forecast(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Each label-free metric against linear top-1, one point per run (every seed; colour and
    marker = method), random init as grey X, the chance level and floors as lines; one row per
    arch, each panel titled with the pooled Spearman ρ of ``forecast.forecast_table``."""
    metrics = list(LABEL_FREE_METRICS)
    table = table.assign(**{m: np.nan for m in metrics if m not in table.columns})  # an older run table
    pooled = forecast.forecast_table(table, probes=["linear_top1"], groups=[forecast.POOLED])
    cells = {(r["arch"], r["metric"]): r for r in pooled.to_dict(orient="records")}
    points = table[~is_raw_pixels(table)]  # the pixels' spectrum is no representation's
    trained = forecast.trained_runs(points)
    archs = sorted(trained["arch"].astype(str).unique(), key=arch_sort_key) or [None]
    methods = sorted(trained["method"].astype(str).unique(), key=_method_order)
    colors = _method_colors(methods)
    size = (_PANEL[0] * len(metrics) + 3.0, (_PANEL[1] + 0.5) * len(archs) + 0.6)
    with figure(path, len(archs), len(metrics), figsize=size, sharey="row") as (fig, axes):
        floors: dict[str, Line2D] = {}  # the chance level, raw pixels and each arch's random init, once
        for r, arch in enumerate(archs):
            of_arch = points[points["arch"].astype(str) == arch] if arch else points
            references = table[(table["arch"].astype(str) == arch) | is_raw_pixels(table)] if arch else table
            for ax, metric in zip(axes[r], metrics):
                for method, rows in forecast.trained_runs(of_arch).groupby("method"):
                    ax.scatter(rows[metric], rows["linear_top1"], marker=method_marker(method), s=45,
                               color=colors[str(method)], edgecolors="black", linewidths=0.5, zorder=3)
                scatter_baselines(ax, of_arch.dropna(subset=[metric]), x=metric, annotate=False)
                floors |= {h.get_label(): h for h in accuracy_floor_lines(ax, references)}
                if arch is None:
                    _say(ax, f"fewer than {forecast.MIN_RUNS} trained runs")
                ax.set_title(_forecast_title(metric, cells.get((arch, metric)), arch if len(archs) > 1 else None),
                             fontsize="medium")
                ax.set_xlabel(LABEL_FREE_METRICS[metric].axis_label)
                ax.grid(True, alpha=0.3)
            axes[r, 0].set_ylabel("linear top-1 accuracy (%)")
        handles = [marker_handle(method_marker(m), method_name(m), face=colors[m]) for m in methods]
        handles.append(marker_handle(METHOD_MARKERS[RANDOM_INIT], "random init (untrained)", face=BASELINE_STYLE["color"]))
        fig.legend(handles=[*handles, *floors.values()], loc="outside right upper", fontsize="small",
                   title="run (marker = method)", title_fontsize="small")
        fig.suptitle("Do label-free metrics forecast accuracy? Trained runs pooled over methods "
                     f"(ρ: Spearman, {100 * forecast.CONFIDENCE:g} % cluster-bootstrap interval)")


# --------------------------------------------------------------------------- everything


_TRAINING_FIGURES: dict[str, Callable[[pd.DataFrame, TrainLogs, str | os.PathLike], None]] = {
    "tracked_metrics.png": plot_tracked_metrics,
    "collapse_over_training.png": plot_collapse_over_training,
    "forecast.png": lambda table, _logs, path: plot_forecast(table, path),
}
# Together with plots' figures, one plot for each of layout's names, in its order.
assert (*SPECTRUM_FIGURE_NAMES, *_TRAINING_FIGURES) == FIGURE_NAMES


def make_all_figures(
    table: pd.DataFrame, spectra: Mapping[str, np.ndarray], logs: TrainLogs, out_dir: str | os.PathLike,
    run_groups: Iterable[str] = (),
) -> list[Path]:
    """Write every figure of ``FIGURE_NAMES`` into ``out_dir``, then the training curves of each of
    ``run_groups`` (``layout.run_group_figure``), and return their paths, in that order.

    ``spectra`` and ``logs`` are keyed by run; a run without a train log (raw pixels) has none.
    """
    paths = make_spectrum_figures(table, spectra, out_dir)
    for name, plot in _TRAINING_FIGURES.items():
        paths.append(Path(out_dir) / name)
        plot(table, logs, paths[-1])
    for group in run_groups:
        paths.append(run_group_figure(Path(out_dir), group))
        plot_run_group(table, logs, group, paths[-1])
    return paths
