"""Figures (siamcollapse.reporting.plots) drawn from the real ImageNet reference spectra.

The figures are checked twice: as files (valid PNGs, nothing left behind) and as drawings,
by capturing each Figure object just before it is saved and reading back what was plotted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from siamcollapse import io, metrics
from siamcollapse.layout import FIGURE_NAMES
from siamcollapse.reporting import plots
from siamcollapse.reporting.tables import build_run_table
from siamcollapse.spectrum_csv import read_spectrum
from tests.helpers.figures import PNG_MAGIC, Capture, assert_valid_pngs
from tests.helpers.reference_spectra import PERCENTS, reference_path

# Illustrative accuracies (not from the paper): only their presence matters to the plots.
LINEAR_TOP1 = {1: 30.0, 5: 45.0, 10: 52.0, 20: 57.0, 50: 63.0, 100: 66.0}
BASELINE = "random-init-r18"


def _run(percent: int) -> str:
    return f"simsiam-r18-{percent}pct"


@pytest.fixture(scope="module")
def reference() -> dict[int, np.ndarray]:
    """The six real spectra, keyed by percent of ImageNet, read by the project's own reader."""
    return {p: read_spectrum(reference_path(p)) for p in PERCENTS}


def _baseline_spectrum() -> np.ndarray:
    """A synthetic, steeply decaying spectrum standing in for an untrained network."""
    return np.geomspace(50.0, 1e-3, 512)


def _record(
    run: str,
    method: str,
    fraction: float,
    spectrum: np.ndarray,
    linear: float,
    arch: str = "resnet18",
    strategy: str = "iid",
) -> dict[str, Any]:
    return {
        "run": run,
        "method": method,
        "arch": arch,
        "dataset_fraction": fraction,
        "strategy": strategy,
        "auc": metrics.auc(spectrum),
        "linear_top1": linear,
        "knn_top1": linear - 5.0,
    }


@pytest.fixture(scope="module")
def spectra(reference: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    return {**{_run(p): s for p, s in reference.items()}, BASELINE: _baseline_spectrum()}


@pytest.fixture(scope="module")
def table(spectra: dict[str, np.ndarray]) -> pd.DataFrame:
    records = [_record(_run(p), "simsiam", p / 100, spectra[_run(p)], LINEAR_TOP1[p]) for p in reversed(PERCENTS)]
    records.append(_record(BASELINE, "random-init", 1.0, spectra[BASELINE], 12.0))
    return build_run_table(records)


@pytest.fixture(scope="module")
def made(
    table: pd.DataFrame, spectra: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Path], dict[str, Any]]:
    """make_spectrum_figures run once (it is the slow part), its figures captured."""
    out_dir = tmp_path_factory.mktemp("figures")
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        paths = plots.make_spectrum_figures(table, spectra, out_dir)
    return paths, capture.figures


def _legend_labels(ax: Any) -> list[str]:
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _run_lines(ax: Any) -> dict[str, Any]:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith(("_", "flat"))}


# --------------------------------------------------------------------------- the data itself


def test_reference_one_percent_spectrum_is_flattest(reference: dict[int, np.ndarray]) -> None:
    """The README's claim, checked through the project's metrics."""
    aucs = {p: metrics.auc(s) for p, s in reference.items()}
    assert min(aucs, key=aucs.get) == 1
    assert aucs[1] < aucs[100]
    mean_normalized = {p: metrics.normalized_spectrum(s).mean() for p, s in reference.items()}
    assert max(mean_normalized, key=mean_normalized.get) == 1
    assert all(0.5 < a < 1.0 for a in aucs.values())


# --------------------------------------------------------------------------- files


def test_make_spectrum_figures_writes_the_seven_valid_pngs(made: tuple[list[Path], dict[str, Any]]) -> None:
    paths, _ = made
    # what the workflow declares, in order; the training figures come after (test_training_plots.py)
    assert [p.name for p in paths] == list(plots.SPECTRUM_FIGURE_NAMES) == list(FIGURE_NAMES[:7])
    assert len(set(paths)) == 7 and all(p.suffix == ".png" for p in paths)
    assert_valid_pngs(paths)


def test_no_temp_files_and_no_open_figures(made: tuple[list[Path], dict[str, Any]]) -> None:
    paths, _ = made
    assert sorted(p.name for p in paths[0].parent.iterdir()) == sorted(p.name for p in paths)
    assert plt.get_fignums() == []


def test_failed_save_leaves_nothing_and_closes_figure(
    spectra: dict[str, np.ndarray],
    table: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_savefig(self: Any, fname: Any, **kwargs: Any) -> None:
        Path(fname).write_bytes(PNG_MAGIC)  # a partial file...
        raise OSError("disk full")  # ...then the failure

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    labels = plots.labels_from_table(table, list(spectra))
    with pytest.raises(OSError, match="disk full"):
        plots.plot_singular_values(spectra, labels, tmp_path / "s.png")
    with pytest.raises(OSError, match="disk full"):
        plots.plot_auc_vs_fraction(table, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []
    assert plt.get_fignums() == []


# --------------------------------------------------------------------------- what is drawn


SPECTRUM_FIGURES = ["singular_values.png", "normalized_spectrum.png", "cumulative_explained_variance.png"]


@pytest.mark.parametrize("name", SPECTRUM_FIGURES)
def test_spectrum_legend_sorted_by_fraction_with_auc(
    made: tuple[list[Path], dict[str, Any]], spectra: dict[str, np.ndarray], name: str
) -> None:
    ax = made[1][name].axes[0]
    expected = [f"{p}% (AUC {metrics.auc(spectra[_run(p)]):.3f})" for p in PERCENTS]
    expected.append(f"random init (AUC {metrics.auc(spectra[BASELINE]):.3f})")
    labels = [label for label in _legend_labels(ax) if not label.startswith("flat")]
    assert labels == expected
    assert labels[0] == "1% (AUC 0.610)"


@pytest.mark.parametrize("name", SPECTRUM_FIGURES)
def test_colour_follows_fraction_and_baseline_is_dashed_grey(
    made: tuple[list[Path], dict[str, Any]], name: str
) -> None:
    lines = list(_run_lines(made[1][name].axes[0]).values())
    trained, baseline = lines[:-1], lines[-1]
    lightness = [np.mean(mcolors.to_rgb(line.get_color())) for line in trained]
    assert lightness == sorted(lightness)  # viridis: dark (1%) to light (100%)
    assert len(
        {line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color()) for line in trained}
    ) == len(trained)
    assert baseline.get_linestyle() == "--"
    r, g, b = mcolors.to_rgb(baseline.get_color())
    assert r == g == b  # grey
    assert all(line.get_linestyle() == "-" for line in trained)


def test_spectrum_axes_scales_and_titles(made: tuple[list[Path], dict[str, Any]]) -> None:
    figures = made[1]
    for name, yscale in zip(SPECTRUM_FIGURES, ["log", "log", "linear"]):
        ax = figures[name].axes[0]
        assert ax.get_yscale() == yscale, name
        assert ax.get_xlabel() and ax.get_ylabel() and figures[name].get_suptitle(), name


def test_normalized_spectrum_plots_sigma_over_sigma1(
    made: tuple[list[Path], dict[str, Any]], spectra: dict[str, np.ndarray]
) -> None:
    line = _run_lines(made[1]["normalized_spectrum.png"].axes[0])["1% (AUC 0.610)"]
    np.testing.assert_allclose(line.get_ydata(), spectra[_run(1)] / spectra[_run(1)][0])


def test_cumulative_curve_area_is_the_auc(
    made: tuple[list[Path], dict[str, Any]], spectra: dict[str, np.ndarray]
) -> None:
    ax = made[1]["cumulative_explained_variance.png"].axes[0]
    lines = _run_lines(ax)
    for p in PERCENTS:
        line = next(v for k, v in lines.items() if k.startswith(f"{p}% "))
        x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
        assert x[0] > 0 and x[-1] == pytest.approx(1.0) and y[-1] == pytest.approx(1.0)
        assert y.mean() == pytest.approx(metrics.auc(spectra[_run(p)]))
    flat = next(line for line in ax.get_lines() if line.get_label().startswith("flat"))
    assert list(flat.get_xdata()) == [0, 1] and list(flat.get_ydata()) == [0, 1]


def test_auc_vs_fraction_has_trend_and_random_init_line(
    made: tuple[list[Path], dict[str, Any]], table: pd.DataFrame
) -> None:
    ax = made[1]["auc_vs_fraction.png"].axes[0]
    assert ax.get_xscale() == "log" and "%" in ax.get_xlabel()
    trend = next(line for line in ax.get_lines() if line.get_label() == "SimSiam IID · resnet18")
    np.testing.assert_allclose(trend.get_xdata(), [p / 100 for p in PERCENTS])
    trained = table[table["method"] != "random-init"].sort_values("dataset_fraction")
    np.testing.assert_allclose(trend.get_ydata(), trained["auc"])
    baseline = next(line for line in ax.get_lines() if line.get_label().startswith("random init"))
    assert baseline.get_linestyle() == "--"
    assert set(baseline.get_ydata()) == {table.loc[table["run"] == BASELINE, "auc"].item()}
    tick_labels = [t.get_text() for t in ax.get_xticklabels()]
    assert tick_labels == ["1%", "5%", "10%", "20%", "50%", "100%"]


def test_auc_vs_accuracy_title_annotations_and_baseline(
    made: tuple[list[Path], dict[str, Any]], table: pd.DataFrame
) -> None:
    ax = made[1]["auc_vs_linear_top1.png"].axes[0]
    trained = table[table["method"] != "random-init"]
    r = np.corrcoef(trained["auc"], trained["linear_top1"])[0, 1]
    assert f"Pearson r = {r:+.2f}" in ax.get_title() and "Spearman" in ax.get_title()
    annotations = {text.get_text() for text in ax.texts}
    assert {f"{p}%" for p in PERCENTS} | {"random init"} <= annotations
    assert "random init (untrained)" in _legend_labels(ax)


def test_auc_vs_accuracy_without_enough_points_has_no_correlation(table: pd.DataFrame, tmp_path: Path) -> None:
    small = table[table["run"].isin([_run(1), _run(100), BASELINE])]
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        plots.plot_auc_vs_accuracy(small, tmp_path / "s.png")
    assert "Pearson" not in capture.figures["s.png"].axes[0].get_title()
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG_MAGIC


def test_table_with_only_random_init_plots(table: pd.DataFrame, tmp_path: Path) -> None:
    only_baseline = table[table["method"] == "random-init"]
    plots.plot_auc_vs_fraction(only_baseline, tmp_path / "f.png")
    plots.plot_auc_vs_accuracy(only_baseline, tmp_path / "a.png")
    for name in ("f.png", "a.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


def test_one_panel_per_group_each_with_its_arch_baseline(spectra: dict[str, np.ndarray], tmp_path: Path) -> None:
    """Several archs/strategies: one subplot each, random-init only beside its own arch."""

    def label(method: str, arch: str, fraction: float, strategy: str) -> dict[str, Any]:
        return {"method": method, "arch": arch, "dataset_fraction": fraction, "strategy": strategy}

    runs = {
        "a1": label("simsiam", "resnet18", 0.01, "iid"),
        "a100": label("simsiam", "resnet18", 1.0, "iid"),
        "b10": label("simsiam", "resnet18", 0.1, "single-pass"),
        "c5": label("simsiam", "resnet50", 0.05, "iid"),
        "r18": label("random-init", "resnet18", 1.0, "none"),
        "r50": label("random-init", "resnet50", 1.0, "none"),
    }
    values = list(spectra.values())
    panel_spectra = {run: values[i] for i, run in enumerate(runs)}
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        plots.plot_cumulative_explained_variance(panel_spectra, runs, tmp_path / "p.png")
    visible = [ax for ax in capture.figures["p.png"].axes if ax.get_visible()]
    titles = [ax.get_title() for ax in visible]
    assert titles == ["SimSiam IID · resnet18", "SimSiam single-pass · resnet18", "SimSiam IID · resnet50"]
    counts = [(len(_run_lines(ax)), sum(k.startswith("random init") for k in _run_lines(ax))) for ax in visible]
    assert counts == [(3, 1), (2, 1), (2, 1)]
    baseline_ys = [
        next(v for k, v in _run_lines(ax).items() if k.startswith("random init")).get_ydata() for ax in visible
    ]
    expected = metrics.cumulative_explained_variance(panel_spectra["r50"])
    np.testing.assert_allclose(baseline_ys[2], expected)  # resnet50 panel: resnet50 baseline


def test_spectra_without_labels_are_rejected(
    spectra: dict[str, np.ndarray], tmp_path: Path, table: pd.DataFrame
) -> None:
    with pytest.raises(ValueError, match="unknown-run"):
        plots.plot_singular_values({"unknown-run": spectra[BASELINE]}, {}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="unknown-run"):
        plots.make_spectrum_figures(table, {"unknown-run": spectra[BASELINE]}, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the whole matrix

# run, method, arch, fraction, strategy, extra keys: every method, strategy, warmup, a fraction
# sweep, two other archs, students and random init (synthetic spectra, 64 dimensions).
MATRIX: list[tuple[str, str, str, float, str, dict[str, Any]]] = [
    ("ss-iid-r18", "simsiam", "resnet18", 1.0, "iid", {}),
    ("ss-wu-r18", "simsiam", "resnet18", 1.0, "iid", {"warmup_epochs": 10}),
    ("ss-sp-r18", "simsiam", "resnet18", 1.0, "single-pass", {}),
    ("ss-cu-r18", "simsiam", "resnet18", 1.0, "cumulative", {}),
    ("ss-la-r18", "simsiam", "resnet18", 1.0, "last", {}),
    ("ss-hy-r18", "simsiam", "resnet18", 1.0, "hybrid", {"switch_epoch": 5}),
    ("nn-r18", "nnsiam", "resnet18", 1.0, "iid", {}),
    ("moco-r18", "mocov3", "resnet18", 1.0, "iid", {"warmup_epochs": 10}),
    ("byol-r18", "byol", "resnet18", 1.0, "iid", {"warmup_epochs": 10}),
    ("ss-iid-r18-10pct", "simsiam", "resnet18", 0.1, "iid", {}),
    ("ss-iid-r18-1pct", "simsiam", "resnet18", 0.01, "iid", {}),
    ("ss-r34", "simsiam", "resnet34", 1.0, "iid", {}),
    ("ss-r50", "simsiam", "resnet50", 1.0, "iid", {}),
    ("st-r18", "distill", "resnet18", 1.0, "iid", {"teacher": "ss-r50", "teacher_method": "simsiam"}),
    ("st-r34", "distill", "resnet34", 1.0, "iid", {"teacher": "ss-r50", "teacher_method": "simsiam"}),
    ("random-init-resnet18", "random-init", "resnet18", float("nan"), "none", {}),
    ("random-init-resnet50", "random-init", "resnet50", float("nan"), "none", {}),
]
FULL_R18 = ["ss-iid-r18", "ss-wu-r18", "ss-sp-r18", "ss-cu-r18", "ss-la-r18", "ss-hy-r18", "nn-r18", "moco-r18",
            "byol-r18"]


def _matrix_spectra() -> dict[str, np.ndarray]:
    return {run: np.geomspace(10.0, 10.0 * 10.0 ** -(1 + 0.3 * i), 64) for i, (run, *_rest) in enumerate(MATRIX)}


def _matrix_table(spectra: dict[str, np.ndarray]) -> pd.DataFrame:
    records = []
    for i, (run, method, arch, fraction, strategy, extra) in enumerate(MATRIX):
        record = _record(run, method, fraction, spectra[run], 20.0 + i, arch=arch, strategy=strategy)
        records.append({**record, **extra})
    return build_run_table(records)


def _make(table: pd.DataFrame, spectra: dict[str, np.ndarray], out_dir: Path) -> tuple[list[Path], dict[str, Any]]:
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        paths = plots.make_spectrum_figures(table, spectra, out_dir)
    return paths, capture.figures


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict[str, np.ndarray], list[Path], dict]:
    spectra = _matrix_spectra()
    table = _matrix_table(spectra)
    paths, figures = _make(table, spectra, tmp_path_factory.mktemp("matrix"))
    return table, spectra, paths, figures


def _line_of(ax: Any, label_start: str) -> Any:
    return next(line for line in ax.get_lines() if line.get_label().startswith(label_start + " (AUC"))


def test_matrix_writes_every_figure(matrix: tuple) -> None:
    _, _, paths, figures = matrix
    assert [p.name for p in paths] == list(plots.SPECTRUM_FIGURE_NAMES)
    assert_valid_pngs(paths)
    assert set(figures) == set(plots.SPECTRUM_FIGURE_NAMES)
    assert plt.get_fignums() == []


def test_spectra_by_method_overlays_the_full_data_runs_of_the_most_common_arch(matrix: tuple) -> None:
    table, spectra, _, figures = matrix
    ax = figures["spectra_by_method.png"].axes[0]
    assert "resnet18" in ax.get_title() and ax.get_yscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    labels = [line.get_label() for line in ax.get_lines()]
    info = table.set_index("run")
    expected = [*FULL_R18, "st-r18", "random-init-resnet18"]  # no 10%/1% run, no other arch
    assert len(labels) == len(expected)
    for run in expected:
        name = plots.training_label(info.loc[run].to_dict() | {"method": info.at[run, "method"]})
        line = _line_of(ax, name)
        np.testing.assert_allclose(line.get_ydata(), metrics.normalized_spectrum(spectra[run]))
    same_method = [_line_of(ax, "SimSiam IID"), _line_of(ax, "SimSiam single-pass")]
    assert same_method[0].get_color() == same_method[1].get_color()  # colour = method
    assert same_method[0].get_linestyle() != same_method[1].get_linestyle()  # told apart by dash
    assert _line_of(ax, "NNSiam IID").get_color() != same_method[0].get_color()
    assert _line_of(ax, "random init").get_linestyle() == "--"


def test_spectra_by_strategy_has_a_distinct_colour_per_training_and_no_students(matrix: tuple) -> None:
    _, _, _, figures = matrix
    ax = figures["spectra_by_strategy.png"].axes[0]
    names = [line.get_label().split(" (AUC")[0] for line in ax.get_lines()]
    assert {"SimSiam IID + 10-epoch lr warmup", "NNSiam IID", "SimSiam hybrid (K=5)", "SimSiam last-k"} <= set(names)
    assert not any(name.startswith("distilled") for name in names)
    assert len(names) == len(FULL_R18) + 1
    trained = [line for line in ax.get_lines() if not line.get_label().startswith("random init")]
    assert len({mcolors.to_hex(line.get_color()) for line in trained}) == len(trained)


def test_auc_vs_accuracy_shows_every_run_with_method_markers_and_an_outside_legend(matrix: tuple) -> None:
    table, _, _, figures = matrix
    fig = figures["auc_vs_linear_top1.png"]
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(table)  # students, every method, baselines
    legend = ax.get_legend()
    handles = {text.get_text(): handle for text, handle in zip(legend.get_texts(), legend.legend_handles)}
    assert {"distilled from SimSiam · resnet18", "NNSiam IID · resnet18", "SimSiam IID · resnet18",
            "MoCo-v3 IID · resnet18", "random init (untrained)"} <= set(handles)
    assert handles["NNSiam IID · resnet18"].get_marker() == plots.METHOD_MARKERS["nnsiam"]
    assert handles["SimSiam IID · resnet18"].get_marker() == plots.METHOD_MARKERS["simsiam"]
    assert len({handles[k].get_marker() for k in handles}) >= 5  # simsiam, nnsiam, mocov3, byol, distill, random
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # never over the data
    annotations = [text.get_text() for text in ax.texts]
    assert sorted(annotations) == ["1%", "10%", "100%", "random init resnet18", "random init resnet50"]  # sweep only


@pytest.mark.parametrize("fraction", [1.0, 0.1])
def test_a_table_with_a_single_run_makes_every_figure(fraction: float, tmp_path: Path) -> None:
    spectrum = np.geomspace(5.0, 1e-3, 32)
    table = build_run_table([_record("only", "simsiam", fraction, spectrum, 40.0)])
    paths, figures = _make(table, {"only": spectrum}, tmp_path)
    assert [p.name for p in paths] == list(plots.SPECTRUM_FIGURE_NAMES)
    assert_valid_pngs(paths)
    ax = figures["spectra_by_method.png"].axes[0]
    if fraction == 1.0:
        assert [line.get_label() for line in ax.get_lines()] == [f"SimSiam IID (AUC {metrics.auc(spectrum):.3f})"]
    else:  # no full-data run: the figure says so instead of plotting nothing silently
        assert ax.get_lines() == [] and "no full-data" in ax.texts[0].get_text()


# --------------------------------------------------------------------------- seeds and floors


def _with_seeds_and_floors(table: pd.DataFrame, spectra: dict[str, np.ndarray]) -> tuple[pd.DataFrame, dict]:
    """The 100% run as two seeds (AUC 0.80 and 0.84), a second random-init seed, raw pixels."""
    records = [r for r in table.to_dict(orient="records") if r["run"] != _run(100)]
    for seed, auc in enumerate([0.80, 0.84]):
        records.append({**_record(f"{_run(100)}-s{seed}", "simsiam", 1.0, spectra[_run(100)], 60.0 + seed),
                        "auc": auc, "seed": seed, "seed_group": _run(100), "num_classes": 10})
    records.append({**_record("raw-pixels", "raw-pixels", float("nan"), spectra[_run(1)], 15.0, arch="raw-pixels"),
                    "strategy": "none", "num_classes": 10})
    seeded = {k: v for k, v in spectra.items() if k != _run(100)}
    seeded |= {f"{_run(100)}-s{s}": spectra[_run(100)] for s in (0, 1)}
    seeded["raw-pixels"] = np.linspace(2.0, 0.1, 50)  # another dimension: must not reach the spectrum figures
    return build_run_table(records), seeded


def _seeded_figure_axes(plot, table, spectra, tmp_path: Path):
    """The axes ``plot`` draws for the seeded table with both floors (the figure is not written)."""
    seeded, _ = _with_seeds_and_floors(table, spectra)
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        plot(seeded, tmp_path / "figure.png")
    return capture.figures["figure.png"].axes[0]


def test_auc_trend_shows_the_mean_over_seeds_with_sd_error_bars(table, spectra, tmp_path: Path) -> None:
    ax = _seeded_figure_axes(plots.plot_auc_vs_fraction, table, spectra, tmp_path)
    trend = next(line for line in ax.get_lines() if line.get_label() == "SimSiam IID · resnet18")
    assert trend.get_ydata()[-1] == pytest.approx(0.82)  # the mean of the two seeds at 100%
    bars = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    assert len(bars) == 1
    segments = bars[0].lines[2][0].get_segments()
    heights = sorted(abs(seg[1][1] - seg[0][1]) for seg in segments)
    assert heights[-1] == pytest.approx(2 * np.std([0.80, 0.84], ddof=1))  # ± sd at 100%
    assert heights[0] == 0.0  # one seed elsewhere: no bar


def test_accuracy_figure_shows_chance_and_both_floors(table, spectra, tmp_path: Path) -> None:
    ax = _seeded_figure_axes(plots.plot_auc_vs_accuracy, table, spectra, tmp_path)
    labels = _legend_labels(ax)
    assert "chance (10.0%)" in labels and "raw pixels (15.0%)" in labels
    assert any(label.startswith("random init resnet18 (mean 12.0%") for label in labels)
    levels = {line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() in (":", "-.")}
    assert levels == {10.0, 15.0}
    every_seed = {tuple(point) for c in ax.collections for point in c.get_offsets()}
    assert (0.80, 60.0) in every_seed and (0.84, 61.0) in every_seed  # each seed is a point


def test_raw_pixel_spectrum_is_left_out_of_the_spectrum_figures(table, spectra, tmp_path: Path) -> None:
    seeded, seeded_spectra = _with_seeds_and_floors(table, spectra)
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        plots.make_spectrum_figures(seeded, seeded_spectra, tmp_path)
    lengths = {len(line.get_xdata()) for line in capture.figures["singular_values.png"].axes[0].get_lines()}
    assert 50 not in lengths
