"""Figures of dimensional collapse: spectra per run, per method and per strategy, and AUC
against data size and accuracy (``SPECTRUM_FIGURE_NAMES``; the figures of the metrics over
training and of the forecast are ``training_plots``', which reuses the helpers here).

A *series* is the runs of one training (``paper.training_label``, e.g. 'SimSiam IID') and one
architecture that differ only in data size. The spectrum panels encode the pretraining-subset
fraction with one sequential colormap (viridis, log-scaled, shared by all panels) so that the
trend with data size is visible at a glance; the trend and scatter plots give each series a
colour and each method a marker. The untrained random-init baseline is always dashed grey.
Every seed of a setting is drawn (one spectrum line, one scatter point per run); the AUC trend
draws the mean over seeds with ± sd error bars. The accuracy figure shows the chance level and
the floors (random init, raw pixels) as horizontal lines. The raw-pixel floor's spectrum (of
pixels, not of a representation, and of another dimension) is left out of the spectrum figures.
Each function writes one PNG atomically and closes its figure, so a batch job never leaves
half-written files or leaks figures.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

from siamcollapse import io, metrics
from siamcollapse.layout import FIGURE_NAMES
from siamcollapse.names import DISTILL, RANDOM_INIT, RAW_PIXELS
from siamcollapse.reporting.health import unhealthy
from siamcollapse.reporting.paper import (
    arch_sort_key,
    is_full_data,
    method_name,
    training_label,
    training_sort_key,
)
from siamcollapse.reporting.tables import (
    OPTIONAL_COLUMNS,
    auc_accuracy_correlation,
    chance_top1,
    format_fraction,
    is_baseline,
    is_missing,
    is_random_init,
    is_raw_pixels,
)

LABEL_KEYS = ("method", "arch", "dataset_fraction", "strategy")  # required of every run's labels
OPTIONAL_LABEL_KEYS = tuple(OPTIONAL_COLUMNS)  # warmup, hybrid K, teacher: used where present
BASELINE_COLOR = "0.45"
UNHEALTHY_COLOR = "tab:red"  # the ring around a collapsed or diverged run
BASELINE_STYLE: dict[str, Any] = {
    "color": BASELINE_COLOR,
    "linestyle": "--",
    "linewidth": 1.6,
}
CMAP = matplotlib.colormaps["viridis"]
_CMAP_RANGE = (0.0, 0.88)  # viridis' last yellow is hard to see on white
# One marker per method in every scatter, so a method is recognised across figures.
METHOD_MARKERS = {"simsiam": "o", "nnsiam": "s", "mocov3": "^", "byol": "D", DISTILL: "P", RANDOM_INIT: "X"}
# One colour per method where lines are told apart by method (spectra_by_method).
METHOD_COLORS = {
    "simsiam": "tab:blue",
    "nnsiam": "tab:orange",
    "mocov3": "tab:green",
    "byol": "tab:red",
    DISTILL: "tab:purple",
}
# Line styles of several runs of one method in one panel ('--' is the baseline's).
_METHOD_LINESTYLES = ["-", "-.", ":", (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1))]
_LOG_RANGE = 1e-7  # log axes show seven decades below the top (round-off values would squash the rest)
OUTSIDE_LEGEND: dict[str, Any] = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
# PNG's zlib level 1 instead of Pillow's 6: the same pixels, a tenth less time per figure set for
# an eighth more bytes (measured on the test config's 12 figures).
SAVE_KWARGS: dict[str, Any] = {"dpi": 150, "bbox_inches": "tight", "pil_kwargs": {"compress_level": 1}}

Spectra = Mapping[str, np.ndarray]
Labels = Mapping[str, Mapping[str, Any]]


# --------------------------------------------------------------------------- shared helpers


@contextlib.contextmanager
def figure(path: str | os.PathLike, nrows: int = 1, ncols: int = 1, **kwargs: Any) -> Iterator[tuple]:
    """Yield (fig, axes); save atomically on success and always close, even on error."""
    # constrained layout keeps the suptitle and outside legends close to the panels at any grid size
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained", **kwargs)
    try:
        yield fig, axes
        io.save_figure(path, fig, **SAVE_KWARGS)
    finally:
        plt.close(fig)


def _is_baseline(info: Mapping[str, Any]) -> bool:
    return info["method"] == RANDOM_INIT


def series_title(info: Mapping[str, Any]) -> str:
    """'SimSiam IID · resnet18': how the runs of one series were trained, and on which arch."""
    return f"{training_label(info)} · {info['arch']}"


def _series_key(info: Mapping[str, Any]) -> tuple:
    """Series in a stable order: by architecture, then as the paper lists trainings."""
    return (arch_sort_key(info["arch"]), training_sort_key(info))


def _is_full_data(info: Mapping[str, Any]) -> bool:
    return is_full_data(info["dataset_fraction"])


def palette(n: int) -> list[Any]:
    """n distinct qualitative colours (tab10, tab20 beyond ten)."""
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _series_colors(titles: Sequence[str]) -> dict[str, Any]:
    unique = list(dict.fromkeys(titles))
    return dict(zip(unique, palette(len(unique)), strict=True))


def _decades_only(ax: Any) -> None:
    """No minor ticks on a log y axis: the decade grid is what one reads, and minor ticks on
    many shared panels make drawing several times slower."""
    ax.yaxis.set_minor_locator(NullLocator())


def method_marker(method: Any) -> str:
    return METHOD_MARKERS.get(str(method), "v")


@dataclass(frozen=True)
class FractionColors:
    """Maps a subset fraction to a viridis colour on a log scale (1% ... 100% spread evenly)."""

    norm: Normalize

    @classmethod
    def for_fractions(cls, fractions: list[float]) -> FractionColors:
        finite = [f for f in fractions if f is not None and math.isfinite(f) and f > 0]
        high = max(finite, default=1.0)
        low = min(finite, default=high / 100)
        if low >= high:
            low = high / 10
        return cls(LogNorm(vmin=low, vmax=high))

    def __call__(self, fraction: float) -> tuple[float, float, float, float]:
        lo, hi = _CMAP_RANGE
        return CMAP(lo + (hi - lo) * float(np.clip(self.norm(fraction), 0.0, 1.0)))


def _run_order(runs: list[str], labels: Labels) -> list[str]:
    """Trained runs by fraction (the legend then reads as the trend), random-init last."""
    return sorted(
        runs,
        key=lambda r: (
            _is_baseline(labels[r]),
            _fraction_key(labels[r]["dataset_fraction"]),
            r,
        ),
    )


def _fraction_key(fraction: Any) -> float:
    return math.inf if is_missing(fraction) else float(fraction)


def _line_style(
    run: str,
    info: Mapping[str, Any],
    auc: float,
    colors: FractionColors,
    with_name: bool,
) -> dict[str, Any]:
    """Colour, dash and legend label of one run: the single place that decides how runs look."""
    if _is_baseline(info):
        name = f"random init {run}" if with_name else "random init"
        return {**BASELINE_STYLE, "label": f"{name} (AUC {auc:.3f})", "zorder": 1}
    fraction = format_fraction(info["dataset_fraction"])
    name = f"{fraction} {run}" if with_name else fraction
    return {
        "color": colors(info["dataset_fraction"]),
        "linestyle": "-",
        "linewidth": 1.8,
        "label": f"{name} (AUC {auc:.3f})",
        "zorder": 2,
    }


def _check_labels(spectra: Spectra, labels: Labels) -> None:
    for run in spectra:
        if run not in labels:
            raise ValueError(f"run {run!r} has a spectrum but no entry in labels")
        missing = [key for key in LABEL_KEYS if key not in labels[run]]
        if missing:
            raise ValueError(f"labels of run {run!r} lack {missing}")


def _spectrum_panels(runs: list[str], labels: Labels) -> list[tuple[str, list[str]]]:
    """One panel per trained series, each with its arch's random-init.

    An arch with random-init spectra but no trained series gets a panel of its own so that no
    spectrum is silently dropped.
    """
    trained = sorted((r for r in runs if not _is_baseline(labels[r])), key=lambda r: _series_key(labels[r]))
    baselines = [r for r in runs if _is_baseline(labels[r])]
    groups: dict[str, list[str]] = {}
    for run in trained:
        groups.setdefault(series_title(labels[run]), []).append(run)
    panels = []
    for title, members in groups.items():
        arch = str(labels[members[0]]["arch"])
        own = [r for r in baselines if str(labels[r]["arch"]) == arch]
        panels.append((title, _run_order(members + own, labels)))
    covered = {str(labels[r]["arch"]) for r in trained}
    for arch in sorted({str(labels[r]["arch"]) for r in baselines} - covered, key=arch_sort_key):
        own = [r for r in baselines if str(labels[r]["arch"]) == arch]
        panels.append((f"{method_name(RANDOM_INIT)} · {arch}", _run_order(own, labels)))
    return panels


def _grid(n: int) -> tuple[int, int]:
    ncols = min(n, 3)
    return math.ceil(n / ncols), ncols


# --------------------------------------------------------------------------- spectrum plots


@dataclass(frozen=True)
class _SpectrumView:
    """What distinguishes the three spectrum plots; everything else is shared."""

    title: str
    xlabel: str
    ylabel: str
    y: Callable[[np.ndarray], np.ndarray]
    x: Callable[[int], np.ndarray]
    yscale: str
    legend_loc: str
    reference: Callable[[Any], None] | None = None


def _descending(values: np.ndarray) -> np.ndarray:
    return np.sort(np.asarray(values, dtype=np.float64).reshape(-1))[::-1]


def _index(d: int) -> np.ndarray:
    return np.arange(1, d + 1)


def _relative_index(d: int) -> np.ndarray:
    return np.arange(1, d + 1) / d


def _flat_reference(ax: Any) -> None:
    """ev_k = k/d: the curve of a perfectly flat spectrum (AUC -> 0.5, no collapse)."""
    ax.plot(
        [0, 1],
        [0, 1],
        color="0.7",
        linewidth=1.0,
        linestyle=":",
        label="flat spectrum (AUC 0.5)",
        zorder=0,
    )


_VIEWS = {
    "singular_values": _SpectrumView(
        title="Singular values of the centred representation matrix",
        xlabel="index i (sorted, descending)",
        ylabel=r"singular value $\sigma_i$ (feature units, log scale)",
        y=_descending,
        x=_index,
        yscale="log",
        legend_loc="lower left",
    ),
    "normalized_spectrum": _SpectrumView(
        title=r"Normalised spectrum $\sigma_i / \sigma_1$ (flatter = less collapse)",
        xlabel="index i (sorted, descending)",
        ylabel=r"$\sigma_i / \sigma_1$ (dimensionless, log scale)",
        y=metrics.normalized_spectrum,
        x=_index,
        yscale="log",
        legend_loc="lower left",
    ),
    "cumulative_explained_variance": _SpectrumView(
        title="Cumulative explained variance (area under curve = AUC, paper Eq. 2)",
        xlabel="fraction of dimensions k / d",
        ylabel=r"$ev_k = \Sigma_{i \leq k}\,\sigma_i \;/\; \Sigma_i\,\sigma_i$ (fraction)",
        y=metrics.cumulative_explained_variance,
        x=_relative_index,
        yscale="linear",
        legend_loc="lower right",
        reference=_flat_reference,
    ),
}


def _draw_panel(
    ax: Any,
    runs: list[str],
    spectra: Spectra,
    labels: Labels,
    colors: FractionColors,
    view: _SpectrumView,
) -> None:
    fractions = [labels[r]["dataset_fraction"] for r in runs if not _is_baseline(labels[r])]
    repeated = len(fractions) != len(set(fractions)) or sum(_is_baseline(labels[r]) for r in runs) > 1
    if view.reference is not None:
        view.reference(ax)
    for run in runs:
        values = np.asarray(spectra[run], dtype=np.float64)
        style = _line_style(run, labels[run], metrics.auc(values), colors, with_name=repeated)
        ax.plot(view.x(values.size), view.y(values), **style)
    ax.set_yscale(view.yscale)
    if view.yscale == "log":
        # Round-off values of a rank-deficient spectrum (1e-20 and below) would squash the
        # curves worth reading; show seven decades below the top.
        top = max(float(np.max(view.y(np.asarray(spectra[r], dtype=np.float64)))) for r in runs)
        ax.set_ylim(bottom=top * _LOG_RANGE)
        _decades_only(ax)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(
        loc=view.legend_loc,
        fontsize="small",
        title="pretraining data",
        title_fontsize="small",
    )


def _plot_spectra(spectra: Spectra, labels: Labels, path: str | os.PathLike, view: _SpectrumView) -> None:
    """Shared body of the three spectrum plots: panels, colours, sorting, legend, axes."""
    if not spectra:
        raise ValueError("no spectra to plot")
    _check_labels(spectra, labels)
    runs = list(spectra)
    colors = FractionColors.for_fractions([labels[r]["dataset_fraction"] for r in runs if not _is_baseline(labels[r])])
    panels = _spectrum_panels(runs, labels)
    nrows, ncols = _grid(len(panels))
    with figure(path, nrows, ncols, figsize=(6.0 * ncols, 4.6 * nrows), sharex=True, sharey=True) as (fig, axes):
        for ax, (title, members) in zip(axes.flat, panels):
            _draw_panel(ax, members, spectra, labels, colors, view)
            ax.set_title(title, fontsize="medium")
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel(view.xlabel)
        for ax in axes[:, 0]:
            ax.set_ylabel(view.ylabel)
        fig.suptitle(view.title)


def plot_singular_values(spectra: Spectra, labels: Labels, path: str | os.PathLike) -> None:
    """Raw singular values: shows both scale and shape of each representation's spectrum."""
    _plot_spectra(spectra, labels, path, _VIEWS["singular_values"])


def plot_normalized_spectrum(spectra: Spectra, labels: Labels, path: str | os.PathLike) -> None:
    """σ_i/σ_1: the shape alone, comparable across runs whose feature scales differ."""
    _plot_spectra(spectra, labels, path, _VIEWS["normalized_spectrum"])


def plot_cumulative_explained_variance(spectra: Spectra, labels: Labels, path: str | os.PathLike) -> None:
    """ev_k vs k/d: the curve whose mean is the paper's AUC, beside the flat-spectrum line."""
    _plot_spectra(spectra, labels, path, _VIEWS["cumulative_explained_variance"])


# --------------------------------------------------------------------------- table plots


def _percent_log_xaxis(ax: Any, fractions: list[float], label: str) -> None:
    """Log x axis with ticks at the subset fractions actually run, labelled in percent."""
    ax.set_xscale("log")
    ticks = sorted({float(f) for f in fractions if not is_missing(f) and f > 0})
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
    else:
        ax.set_xlim(0.005, 1.5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_fraction(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


@dataclass(frozen=True)
class _Series:
    """The trained runs of one training and one arch, sorted by fraction: one line of a trend."""

    title: str
    method: str
    rows: pd.DataFrame


def _series(table: pd.DataFrame) -> list[_Series]:
    """Trained rows split into series, by arch and then in the paper's order of trainings."""
    trained = table[~is_baseline(table)]
    records = trained.to_dict(orient="records")
    members: dict[str, list[int]] = {}
    for i in sorted(range(len(records)), key=lambda i: (_series_key(records[i]), str(records[i]["run"]))):
        members.setdefault(series_title(records[i]), []).append(i)
    return [
        _Series(title, str(records[rows[0]]["method"]), trained.iloc[rows].sort_values("dataset_fraction", kind="stable"))
        for title, rows in members.items()
    ]


def baseline_lines(ax: Any, table: pd.DataFrame, column: str, decimals: int = 3) -> None:
    """Random-init per arch as a dashed horizontal line: the value with no pretraining at all
    (the mean over its seeds)."""
    baselines = table[is_random_init(table)].dropna(subset=[column])
    shades = itertools.cycle([BASELINE_COLOR, "0.7", "0.2"])  # greys, distinct per arch
    for shade, (arch, rows) in zip(shades, baselines.groupby("arch")):
        value = rows[column].mean()
        ax.axhline(
            value,
            color=shade,
            linestyle="--",
            linewidth=1.4,
            label=f"random init {arch} ({value:.{decimals}f})",
            zorder=1,
        )


def plot_auc_vs_fraction(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """AUC against subset size: the paper's central trend (less data, less collapse)."""
    series = _series(table)
    colors = _series_colors([s.title for s in series])
    with figure(path, figsize=(9.0, 4.8)) as (_fig, axes):
        ax = axes[0, 0]
        for s in series:
            by_fraction = s.rows.groupby("dataset_fraction")["auc"]
            means, sds = by_fraction.mean(), by_fraction.std(ddof=1)  # sd: NaN (no bar) for one seed
            ax.plot(
                means.index,
                means.to_numpy(),
                color=colors[s.title],
                marker=method_marker(s.method),
                markeredgecolor="black",
                markeredgewidth=0.5,
                linewidth=1.8,
                label=s.title,
                zorder=3,
            )
            if sds.notna().any():  # ± sd over seeds where a fraction has several
                ax.errorbar(means.index, means.to_numpy(), yerr=sds.fillna(0.0).to_numpy(), fmt="none",
                            ecolor=colors[s.title], elinewidth=1.2, capsize=3, zorder=3)
            ax.scatter(s.rows["dataset_fraction"], s.rows["auc"], color=colors[s.title], s=12, alpha=0.5, zorder=2)
        baseline_lines(ax, table, "auc")
        unhealthy_handles = mark_unhealthy(ax, table[~is_baseline(table)], "dataset_fraction", "auc")
        _percent_log_xaxis(
            ax,
            table.loc[~is_baseline(table), "dataset_fraction"].tolist(),
            "pretraining subset (% of dataset, log scale)",
        )
        ax.set_ylabel("AUC (paper Eq. 2; 0.5 = flat, lower = less collapse)")
        ax.set_title("Dimensional collapse vs pretraining-set size")
        ax.grid(True, alpha=0.3)
        handles, _labels = ax.get_legend_handles_labels()
        ax.legend(handles=handles + unhealthy_handles, fontsize="small", title="training · arch (marker = method)",
                  title_fontsize="small", **OUTSIDE_LEGEND)


def _correlation_title(table: pd.DataFrame) -> str:
    corr = auc_accuracy_correlation(table)
    title = "Linear top-1 accuracy vs collapse (AUC)"
    if corr is None:
        return title
    return f"{title}\ntrained runs: Pearson r = {corr.pearson:+.2f}, Spearman ρ = {corr.spearman:+.2f} (n = {corr.n})"


def _annotate(ax: Any, x: float, y: float, text: str, left: bool = False) -> None:
    """Label a point; ``left`` for points that tend to sit at the right edge (random init)."""
    ax.annotate(
        text,
        (x, y),
        xytext=(-6, 4) if left else (5, 4),
        textcoords="offset points",
        ha="right" if left else "left",
        fontsize="x-small",
    )


def marker_handle(marker: str, label: str, face: Any = "white") -> Line2D:
    """A legend entry for a marker alone (scatter points carry no line)."""
    return Line2D(
        [],
        [],
        linestyle="none",
        marker=marker,
        markersize=8,
        markerfacecolor=face,
        markeredgecolor="black",
        label=label,
    )


def _scatter_series(ax: Any, points: pd.DataFrame, colors: Mapping[str, Any]) -> list[Line2D]:
    """Each series in its colour with its method's marker, joined in order of data size. Points of
    a subset sweep, and any run on a subset, are labelled with their fraction (a lone full-data
    run is not: '100%' on every point would only crowd the plot)."""
    handles = []
    for s in _series(points):
        marker, color = method_marker(s.method), colors[s.title]
        if len(s.rows) > 1:
            ax.plot(s.rows["auc"], s.rows["linear_top1"], color=color, linewidth=1.0, alpha=0.6, zorder=2)
        ax.scatter(
            s.rows["auc"],
            s.rows["linear_top1"],
            marker=marker,
            s=60,
            color=color,
            edgecolors="black",
            linewidths=0.6,
            zorder=3,
        )
        for _, row in s.rows.iterrows():
            if len(s.rows) > 1 or not is_full_data(row["dataset_fraction"]):
                _annotate(ax, row["auc"], row["linear_top1"], format_fraction(row["dataset_fraction"]))
        handles.append(marker_handle(marker, s.title, face=color))
    return handles


def scatter_baselines(ax: Any, points: pd.DataFrame, x: str = "auc", annotate: bool = True) -> list[Line2D]:
    """The random-init runs of ``points`` as grey X against linear top-1 (``x``: the collapse metric)."""
    baselines = points[is_baseline(points)]
    if baselines.empty:
        return []
    ax.scatter(
        baselines[x],
        baselines["linear_top1"],
        marker=METHOD_MARKERS[RANDOM_INIT],
        s=90,
        zorder=3,
        color=BASELINE_COLOR,
        edgecolors="black",
        linewidths=0.6,
    )
    several = baselines["arch"].nunique() > 1
    for _, row in baselines.iterrows() if annotate else ():
        text = f"random init {row['arch']}" if several else "random init"
        _annotate(ax, row[x], row["linear_top1"], text, left=True)
    return [marker_handle(METHOD_MARKERS[RANDOM_INIT], "random init (untrained)", face=BASELINE_COLOR)]


def accuracy_floor_lines(ax: Any, table: pd.DataFrame, column: str = "linear_top1") -> list[Line2D]:
    """The chance level and the raw-pixel floor as horizontal lines (random init is a point)."""
    handles = []
    chance = chance_top1(table)
    if chance is not None:
        ax.axhline(chance, color="black", linestyle=":", linewidth=1.2, zorder=1)
        handles.append(Line2D([], [], color="black", linestyle=":", label=f"chance ({chance:.1f}%)"))
    pixels = table[is_raw_pixels(table)][column].dropna()
    if not pixels.empty:
        value = pixels.mean()
        ax.axhline(value, color="tab:brown", linestyle="-.", linewidth=1.2, zorder=1)
        handles.append(Line2D([], [], color="tab:brown", linestyle="-.", label=f"raw pixels ({value:.1f}%)"))
    floors = table[is_random_init(table)].dropna(subset=[column])
    for arch, rows in floors.groupby("arch"):
        value = rows[column].mean()
        ax.axhline(value, color=BASELINE_COLOR, linestyle="--", linewidth=1.0, zorder=1)
        handles.append(Line2D([], [], color=BASELINE_COLOR, linestyle="--",
                              label=f"random init {arch} (mean {value:.1f}%, n={len(rows)})"))
    return handles


def mark_unhealthy(ax: Any, points: pd.DataFrame, x: str, y: str) -> list[Line2D]:
    """A red ring around every collapsed or diverged run of ``points`` (runs.csv's health column)."""
    rows = unhealthy(points).dropna(subset=[x, y])
    if rows.empty:
        return []
    ax.scatter(rows[x], rows[y], s=260, facecolors="none", edgecolors=UNHEALTHY_COLOR, linewidths=1.8, zorder=4)
    return [Line2D([], [], linestyle="none", marker="o", markersize=13, markerfacecolor="none",
                   markeredgecolor=UNHEALTHY_COLOR, markeredgewidth=1.8,
                   label=f"collapsed or diverged ({len(rows)}; runs.md)")]


def plot_auc_vs_accuracy(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Does less collapse mean better features? AUC against linear-probe top-1 for every run
    (every method, strategy, data size, seed and student), one colour per series, one marker per
    method; the chance level and the floors as horizontal lines."""
    points = table[~is_raw_pixels(table)].dropna(subset=["auc", "linear_top1"])  # pixels have no representation AUC
    colors = _series_colors([s.title for s in _series(table)])  # the same colours as auc_vs_fraction
    with figure(path, figsize=(9.5, 5.2)) as (_fig, axes):
        ax = axes[0, 0]
        handles = _scatter_series(ax, points, colors) + scatter_baselines(ax, points)
        handles += accuracy_floor_lines(ax, table) + mark_unhealthy(ax, points, "auc", "linear_top1")
        ax.margins(0.1)  # room for the point annotations
        ax.set_xlabel("AUC (paper Eq. 2; lower = less collapse)")
        ax.set_ylabel("linear top-1 accuracy (%)")
        ax.set_title(_correlation_title(table), fontsize="medium")
        ax.grid(True, alpha=0.3)
        if handles:
            ax.legend(
                handles=handles,
                fontsize="small",
                title="training · arch (marker = method)",
                title_fontsize="small",
                **OUTSIDE_LEGEND,
            )


# --------------------------------------------------------------------------- spectra compared


StyleMap = Callable[[list[str], Labels], dict[str, dict[str, Any]]]


def _focus_arch(runs: list[str], labels: Labels) -> str:
    """The arch with the most full-data trained runs (ties: the smaller ResNet); any run's arch
    where no run is a full-data trained one."""
    pool = [r for r in runs if not _is_baseline(labels[r]) and _is_full_data(labels[r])] or runs
    counts = Counter(str(labels[r]["arch"]) for r in pool)
    return min(counts, key=lambda arch: (-counts[arch], arch_sort_key(arch)))


def _legend_names(runs: list[str], labels: Labels) -> dict[str, str]:
    """Each run's training label; the run name appended where two runs share one."""
    names = {r: training_label(labels[r]) for r in runs}
    counts = Counter(names.values())
    return {r: f"{name} [{r}]" if counts[name] > 1 else name for r, name in names.items()}


def styles_by_method(runs: list[str], labels: Labels) -> dict[str, dict[str, Any]]:
    """Colour per method (fixed across figures); a method's second, third... run another dash."""
    extra = itertools.cycle(["tab:brown", "tab:pink", "tab:olive", "tab:cyan", "black"])  # methods without a colour
    colors: dict[str, Any] = {}
    seen: Counter = Counter()
    styles = {}
    for run in runs:
        info = labels[run]
        if _is_baseline(info):
            styles[run] = dict(BASELINE_STYLE)
            continue
        method = str(info["method"])
        colors.setdefault(method, METHOD_COLORS.get(method) or next(extra))
        dash = _METHOD_LINESTYLES[seen[method] % len(_METHOD_LINESTYLES)]
        styles[run] = {"color": colors[method], "linestyle": dash, "linewidth": 1.8}
        seen[method] += 1
    return styles


def styles_by_training(runs: list[str], labels: Labels) -> dict[str, dict[str, Any]]:
    """A distinct colour per training (strategy, warmup, method), solid lines."""
    trained = [r for r in runs if not _is_baseline(labels[r])]
    colors = dict(zip(trained, palette(len(trained)), strict=True))
    return {
        r: dict(BASELINE_STYLE) if _is_baseline(labels[r]) else {"color": colors[r], "linestyle": "-", "linewidth": 1.8}
        for r in runs
    }


@dataclass(frozen=True)
class _Comparison:
    """What one comparison figure overlays (full-data runs of one arch) and how lines differ."""

    by: str
    include: Callable[[Mapping[str, Any]], bool]
    styles: StyleMap


_COMPARISONS = {
    "method": _Comparison("method", lambda info: True, styles_by_method),
    "strategy": _Comparison(
        "training strategy", lambda info: str(info["method"]) != DISTILL, styles_by_training
    ),
}


def _lowest_positive(values: np.ndarray) -> float:
    """The smallest positive σ_i/σ_1 of a spectrum (1.0 for a rank-one one)."""
    normalized = metrics.normalized_spectrum(values)
    return float(normalized[normalized > 0].min())


def _plot_comparison(spectra: Spectra, labels: Labels, path: str | os.PathLike, comparison: _Comparison) -> None:
    """Normalised spectra of the focus arch's full-data runs overlaid, random init dashed grey."""
    if not spectra:
        raise ValueError("no spectra to plot")
    _check_labels(spectra, labels)
    arch = _focus_arch(list(spectra), labels)
    runs = [
        r
        for r in spectra
        if str(labels[r]["arch"]) == arch
        and (_is_baseline(labels[r]) or (_is_full_data(labels[r]) and comparison.include(labels[r])))
    ]
    runs.sort(key=lambda r: (_is_baseline(labels[r]), training_sort_key(labels[r]), r))
    names, styles = _legend_names(runs, labels), comparison.styles(runs, labels)
    with figure(path, figsize=(9.5, 5.0)) as (_fig, axes):
        ax = axes[0, 0]
        for run in runs:
            values = np.asarray(spectra[run], dtype=np.float64)
            label = f"{names[run]} (AUC {metrics.auc(values):.3f})"
            ax.plot(_index(values.size), metrics.normalized_spectrum(values), label=label, **styles[run])
        if all(_is_baseline(labels[r]) for r in runs):
            ax.text(0.5, 0.5, f"no full-data trained run of {arch}", transform=ax.transAxes, ha="center", color="0.4")
        ax.set_yscale("log")
        ax.set_ylim(bottom=max(_LOG_RANGE, 0.5 * min((_lowest_positive(spectra[r]) for r in runs), default=1.0)))
        _decades_only(ax)
        ax.set_xlabel("index i (sorted, descending)")
        ax.set_ylabel(r"$\sigma_i / \sigma_1$ (dimensionless, log scale)")
        ax.set_title(f"Normalised spectra by {comparison.by} · {arch} · full training set (flatter = less collapse)")
        ax.grid(True, which="major", alpha=0.3)
        if runs:
            title = f"run (AUC){'; colour = method' if comparison.by == 'method' else ''}"
            ax.legend(fontsize="small", title=title, title_fontsize="small", **OUTSIDE_LEGEND)


def plot_spectra_by_method(spectra: Spectra, labels: Labels, path: str | os.PathLike) -> None:
    """One line per full-data run of the most common arch, coloured by method (students too)."""
    _plot_comparison(spectra, labels, path, _COMPARISONS["method"])


def plot_spectra_by_strategy(spectra: Spectra, labels: Labels, path: str | os.PathLike) -> None:
    """One line per training (strategy, lr warmup, NNSiam...) of the most common arch's full-data runs."""
    _plot_comparison(spectra, labels, path, _COMPARISONS["strategy"])


# --------------------------------------------------------------------------- everything


def labels_from_table(table: pd.DataFrame, runs: list[str]) -> dict[str, dict[str, Any]]:
    """The per-run labels the spectrum plots need, looked up in the run table."""
    indexed = table.set_index("run")
    unknown = [r for r in runs if r not in indexed.index]
    if unknown:
        raise ValueError(f"spectra given for runs not in the run table: {unknown}")
    keys = [*LABEL_KEYS, *(k for k in OPTIONAL_LABEL_KEYS if k in indexed.columns)]
    return {r: {k: indexed.at[r, k] for k in keys} for r in runs}


_SPECTRUM_FIGURES: dict[str, Callable[[Spectra, Labels, str | os.PathLike], None]] = {
    "singular_values.png": plot_singular_values,
    "normalized_spectrum.png": plot_normalized_spectrum,
    "cumulative_explained_variance.png": plot_cumulative_explained_variance,
    "spectra_by_method.png": plot_spectra_by_method,
    "spectra_by_strategy.png": plot_spectra_by_strategy,
}
_TABLE_FIGURES: dict[str, Callable[[pd.DataFrame, str | os.PathLike], None]] = {
    "auc_vs_fraction.png": plot_auc_vs_fraction,
    "auc_vs_linear_top1.png": plot_auc_vs_accuracy,
}
# The figures of layout's names drawn here, in its order (reporting.training_plots draws the rest).
SPECTRUM_FIGURE_NAMES = tuple(name for name in FIGURE_NAMES if name in _SPECTRUM_FIGURES or name in _TABLE_FIGURES)
assert set(SPECTRUM_FIGURE_NAMES) == set(_SPECTRUM_FIGURES) | set(_TABLE_FIGURES)


def make_spectrum_figures(
    table: pd.DataFrame, spectra: Mapping[str, np.ndarray], out_dir: str | os.PathLike
) -> list[Path]:
    """Write the seven figures of ``SPECTRUM_FIGURE_NAMES`` into ``out_dir`` and return their paths,
    in that order (``training_plots.make_all_figures`` writes them and the training figures)."""
    out_dir = Path(out_dir)
    methods = dict(zip(table["run"], table["method"]))
    spectra = {run: values for run, values in spectra.items() if methods.get(run) != RAW_PIXELS}
    labels = labels_from_table(table, list(spectra))
    paths = []
    for name in SPECTRUM_FIGURE_NAMES:
        path = out_dir / name
        if name in _SPECTRUM_FIGURES:
            _SPECTRUM_FIGURES[name](spectra, labels, path)
        else:
            _TABLE_FIGURES[name](table, path)
        paths.append(path)
    return paths
