"""Figures of dimensional collapse: spectra per run, and AUC against data size and accuracy.

Every figure encodes the pretraining-subset fraction with one sequential colormap (viridis,
log-scaled, shared by all panels) so that the trend with data size is visible at a glance;
the untrained random-init baseline is always dashed grey. Each function writes one PNG
atomically and closes its figure, so a batch job never leaves half-written files or leaks
figures.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from siamcollapse import io, metrics
from siamcollapse.reporting.tables import (
    BASELINE_METHOD,
    GROUP_COLUMNS,
    auc_accuracy_correlation,
    format_fraction,
    is_baseline,
)

FIGURE_NAMES = {
    "singular_values": "singular_values.png",
    "normalized_spectrum": "normalized_spectrum.png",
    "cumulative_explained_variance": "cumulative_explained_variance.png",
    "auc_vs_fraction": "auc_vs_fraction.png",
    "auc_vs_linear_top1": "auc_vs_linear_top1.png",
}
LABEL_KEYS = ("method", "arch", "dataset_fraction", "strategy")
BASELINE_COLOR = "0.45"
BASELINE_STYLE: dict[str, Any] = {
    "color": BASELINE_COLOR,
    "linestyle": "--",
    "linewidth": 1.6,
}
CMAP = matplotlib.colormaps["viridis"]
_CMAP_RANGE = (0.0, 0.88)  # viridis' last yellow is hard to see on white
_MARKERS = ["o", "s", "^", "D", "v", "P", "*", "h"]
_SAVE_KWARGS: dict[str, Any] = {"dpi": 150, "bbox_inches": "tight"}

Spectra = Mapping[str, np.ndarray]
Labels = Mapping[str, Mapping[str, Any]]


# --------------------------------------------------------------------------- shared helpers


@contextlib.contextmanager
def _figure(path: str | os.PathLike, nrows: int = 1, ncols: int = 1, **kwargs: Any) -> Iterator[tuple]:
    """Yield (fig, axes); save atomically on success and always close, even on error."""
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, **kwargs)
    try:
        yield fig, axes
        io.save_figure(path, fig, **_SAVE_KWARGS)
    finally:
        plt.close(fig)


def _is_baseline(info: Mapping[str, Any]) -> bool:
    return info["method"] == BASELINE_METHOD


def _group_title(method: str, arch: str, strategy: Any) -> str:
    return " · ".join(str(part) for part in (method, arch, strategy) if not _missing(part))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


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

    def colorbar(self, fig: Any, axes: Any, fractions: list[float]) -> None:
        """A colour key in percent (ticks at the fractions run), where no legend shows it."""
        sm = ScalarMappable(norm=self.norm, cmap=_truncated_cmap())
        bar = fig.colorbar(sm, ax=axes, pad=0.02)
        bar.set_label("pretraining subset (% of dataset)")
        bar.set_ticks(sorted(set(fractions)))
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_fraction(v)))
        bar.ax.yaxis.set_minor_formatter(NullFormatter())


def _truncated_cmap() -> Any:
    lo, hi = _CMAP_RANGE
    return ListedColormap(CMAP(np.linspace(lo, hi, 256)))


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
    return math.inf if _missing(fraction) else float(fraction)


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
    """One panel per trained (method, arch, strategy) group, each with its arch's random-init.

    An arch with random-init spectra but no trained group gets a panel of its own so that no
    spectrum is silently dropped.
    """
    trained = [r for r in runs if not _is_baseline(labels[r])]
    baselines = [r for r in runs if _is_baseline(labels[r])]
    groups: dict[tuple[str, str, str], list[str]] = {}
    for run in trained:
        key = tuple(str(labels[run][c]) for c in GROUP_COLUMNS)
        groups.setdefault(key, []).append(run)  # type: ignore[arg-type]
    panels = []
    for (method, arch, strategy), members in sorted(groups.items()):
        own = [r for r in baselines if str(labels[r]["arch"]) == arch]
        panels.append((_group_title(method, arch, strategy), _run_order(members + own, labels)))
    covered = {arch for (_, arch, _) in groups}
    for arch in sorted({str(labels[r]["arch"]) for r in baselines} - covered):
        own = [r for r in baselines if str(labels[r]["arch"]) == arch]
        panels.append((_group_title(BASELINE_METHOD, arch, None), _run_order(own, labels)))
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
        ax.set_ylim(bottom=top * 1e-7)
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
    with _figure(path, nrows, ncols, figsize=(6.0 * ncols, 4.6 * nrows), sharex=True, sharey=True) as (fig, axes):
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
    ticks = sorted({float(f) for f in fractions if not _missing(f) and f > 0})
    if ticks:
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.set_xlim(ticks[0] / 1.5, ticks[-1] * 1.5)
    else:
        ax.set_xlim(0.005, 1.5)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_fraction(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)


def _groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Trained rows split by (method, arch, strategy), titled, in a stable order."""
    trained = table[~is_baseline(table)]
    return [
        (_group_title(*key), rows.sort_values("dataset_fraction"))
        for key, rows in trained.groupby(GROUP_COLUMNS, sort=True, dropna=False)
    ]


def _baseline_lines(ax: Any, table: pd.DataFrame, column: str) -> None:
    """Random-init per arch as a dashed horizontal line: the value with no pretraining at all."""
    baselines = table[is_baseline(table)].dropna(subset=[column])
    shades = itertools.cycle([BASELINE_COLOR, "0.7", "0.2"])  # greys, distinct per arch
    for shade, (arch, rows) in zip(shades, baselines.groupby("arch")):
        value = rows[column].mean()
        ax.axhline(
            value,
            color=shade,
            linestyle="--",
            linewidth=1.4,
            label=f"random init {arch} ({value:.3f})",
            zorder=1,
        )


def plot_auc_vs_fraction(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """AUC against subset size: the paper's central trend (less data, less collapse)."""
    with _figure(path, figsize=(7.0, 4.8)) as (_fig, axes):
        ax = axes[0, 0]
        for i, (title, rows) in enumerate(_groups(table)):
            means = rows.groupby("dataset_fraction")["auc"].mean()
            color = matplotlib.colormaps["tab10"](i % 10)
            ax.plot(
                means.index,
                means.to_numpy(),
                color=color,
                marker=_MARKERS[i % len(_MARKERS)],
                linewidth=1.8,
                label=title,
                zorder=3,
            )
            ax.scatter(
                rows["dataset_fraction"],
                rows["auc"],
                color=color,
                s=12,
                alpha=0.5,
                zorder=2,
            )
        _baseline_lines(ax, table, "auc")
        _percent_log_xaxis(
            ax,
            table.loc[~is_baseline(table), "dataset_fraction"].tolist(),
            "pretraining subset (% of dataset, log scale)",
        )
        ax.set_ylabel("AUC (paper Eq. 2; 0.5 = flat, lower = less collapse)")
        ax.set_title("Dimensional collapse vs pretraining-set size")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="best")


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


def _marker_handle(marker: str, label: str, face: str = "white") -> Line2D:
    """A legend entry for a marker shape alone (colour encodes fraction, not group)."""
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


def _scatter_groups(ax: Any, points: pd.DataFrame, colors: FractionColors) -> list[Line2D]:
    handles = []
    for i, (title, rows) in enumerate(_groups(points)):
        marker = _MARKERS[i % len(_MARKERS)]
        ax.scatter(
            rows["auc"],
            rows["linear_top1"],
            marker=marker,
            s=55,
            zorder=3,
            c=[colors(f) for f in rows["dataset_fraction"]],
            edgecolors="black",
            linewidths=0.6,
        )
        for _, row in rows.iterrows():
            _annotate(
                ax,
                row["auc"],
                row["linear_top1"],
                format_fraction(row["dataset_fraction"]),
            )
        handles.append(_marker_handle(marker, title))
    return handles


def _scatter_baselines(ax: Any, points: pd.DataFrame) -> list[Line2D]:
    baselines = points[is_baseline(points)]
    if baselines.empty:
        return []
    ax.scatter(
        baselines["auc"],
        baselines["linear_top1"],
        marker="X",
        s=90,
        zorder=3,
        color=BASELINE_COLOR,
        edgecolors="black",
        linewidths=0.6,
    )
    for _, row in baselines.iterrows():
        _annotate(ax, row["auc"], row["linear_top1"], "random init", left=True)
    return [_marker_handle("X", "random init (untrained)", face=BASELINE_COLOR)]


def plot_auc_vs_accuracy(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Does less collapse mean better features? AUC against linear-probe top-1."""
    points = table.dropna(subset=["auc", "linear_top1"])
    trained = points[~is_baseline(points)]
    colors = FractionColors.for_fractions(trained["dataset_fraction"].tolist())
    with _figure(path, figsize=(7.4, 5.0)) as (fig, axes):
        ax = axes[0, 0]
        handles = _scatter_groups(ax, points, colors) + _scatter_baselines(ax, points)
        if not trained.empty:
            colors.colorbar(fig, ax, trained["dataset_fraction"].tolist())
        ax.margins(0.1)  # room for the point annotations
        ax.set_xlabel("AUC (paper Eq. 2; lower = less collapse)")
        ax.set_ylabel("linear top-1 accuracy (%)")
        ax.set_title(_correlation_title(table), fontsize="medium")
        ax.grid(True, alpha=0.3)
        if handles:
            ax.legend(handles=handles, fontsize="small", loc="best")


# --------------------------------------------------------------------------- everything


def labels_from_table(table: pd.DataFrame, runs: list[str]) -> dict[str, dict[str, Any]]:
    """The per-run labels the spectrum plots need, looked up in the run table."""
    indexed = table.set_index("run")
    unknown = [r for r in runs if r not in indexed.index]
    if unknown:
        raise ValueError(f"spectra given for runs not in the run table: {unknown}")
    return {r: {k: indexed.at[r, k] for k in LABEL_KEYS} for r in runs}


def make_all_figures(table: pd.DataFrame, spectra: Mapping[str, np.ndarray], out_dir: str | os.PathLike) -> list[Path]:
    """Write the five standard figures into ``out_dir`` and return their paths."""
    out_dir = Path(out_dir)
    labels = labels_from_table(table, list(spectra))
    paths = {key: out_dir / name for key, name in FIGURE_NAMES.items()}
    plot_singular_values(spectra, labels, paths["singular_values"])
    plot_normalized_spectrum(spectra, labels, paths["normalized_spectrum"])
    plot_cumulative_explained_variance(spectra, labels, paths["cumulative_explained_variance"])
    plot_auc_vs_fraction(table, paths["auc_vs_fraction"])
    plot_auc_vs_accuracy(table, paths["auc_vs_linear_top1"])
    return list(paths.values())
