"""Figures of the metrics tracked during training and of the forecast
(siamcollapse.reporting.training_plots), drawn from a synthetic experiment and read back."""

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

from siamcollapse import io, layout
from siamcollapse.layout import FIGURE_NAMES
from siamcollapse.metrics import SPECTRUM_METRICS
from siamcollapse.reporting import forecast, plots, training_plots
from siamcollapse.reporting.tables import LABEL_FREE_METRICS, build_run_table
from tests.helpers import collapse_runs
from tests.helpers.figures import Capture, assert_valid_pngs

UNTRACKED = "byol-100"  # a setting whose logs predate the tracking: left out of the training figures
EPOCHS, TRACK_EVERY = 6, 2
TRACKED_EPOCHS = [2.0, 4.0, 6.0]


# --------------------------------------------------------------------------- train logs


def test_read_train_log_takes_the_tracked_epochs_and_nan_elsewhere(tmp_path: Path) -> None:
    final = collapse_runs.metrics_of(40.0)
    path = collapse_runs.write_train_log(tmp_path / "log.csv", collapse_runs.train_log(final, EPOCHS, TRACK_EVERY)
                                         .assign(track_s=0.5))  # other columns are ignored
    log = training_plots.read_train_log(path)
    assert list(log.columns) == ["epoch", *training_plots.GROUP_CURVES, *SPECTRUM_METRICS]
    assert (log.dtypes == float).all()
    assert log["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert log.dropna()["epoch"].tolist() == TRACKED_EPOCHS
    assert log.set_index("epoch").at[6.0, "rankme"] == pytest.approx(final["rankme"])


def test_read_train_log_of_an_older_run_and_of_the_random_init_floor(tmp_path: Path) -> None:
    old = collapse_runs.write_train_log(tmp_path / "old.csv", collapse_runs.train_log({}, EPOCHS, tracked=False))
    log = training_plots.read_train_log(old)
    assert len(log) == EPOCHS and log[list(SPECTRUM_METRICS)].isna().all().all()
    header = tmp_path / "header.csv"
    header.write_text(",".join(collapse_runs.TRAIN_LOG_COLUMNS + list(SPECTRUM_METRICS)) + "\n")
    assert training_plots.read_train_log(header).empty
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    assert list(training_plots.read_train_log(blank).columns) == ["epoch", *training_plots.GROUP_CURVES,
                                                                    *SPECTRUM_METRICS]


# --------------------------------------------------------------------------- the experiment


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return build_run_table(collapse_runs.experiment_records())


def _logs(table: pd.DataFrame, tracked: bool = True) -> dict[str, pd.DataFrame]:
    """Every run's log as plot-figures reads it: none for raw pixels, a header for random init."""
    logs = {}
    for record in table.to_dict(orient="records"):
        if record["method"] == "raw-pixels":
            continue
        on = tracked and record["method"] != "random-init" and record["seed_group"] != UNTRACKED
        log = collapse_runs.train_log(collapse_runs.metrics_of(record["linear_top1"]), EPOCHS, TRACK_EVERY, on)
        logs[record["run"]] = (log if record["method"] != "random-init" else log.iloc[:0])[
            ["epoch", *(SPECTRUM_METRICS if on else [])]].reindex(columns=["epoch", *SPECTRUM_METRICS]).astype(float)
    return logs


def _draw(plot, *args: Any, tmp_path: Path) -> Any:
    """The figure ``plot`` draws (and writes to tmp_path/figure.png)."""
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        plot(*args, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 1000
    return capture.figures["figure.png"]


def _tracked_runs(table: pd.DataFrame) -> list[str]:
    trained = table[~table["method"].isin(["random-init", "raw-pixels"])]
    return trained.loc[trained["seed_group"] != UNTRACKED, "run"].tolist()


def _run_lines(ax: Any) -> list[Any]:
    """The lines of runs or settings (the reference lines span the axes: x in [0, 1])."""
    return [line for line in ax.get_lines() if list(line.get_xdata()) == TRACKED_EPOCHS]


def _legend_outside(fig: Any, legend: Any) -> None:
    """The legend never covers a panel, at the dpi the file is written with."""
    fig.set_dpi(plots.SAVE_KWARGS["dpi"])
    fig.canvas.draw()
    assert legend.get_window_extent().x0 >= max(ax.get_window_extent().x1 for ax in fig.axes) - 1


def test_make_all_figures_writes_every_figure_in_order_even_without_tracked_values(table: pd.DataFrame,
                                                                                  tmp_path: Path) -> None:
    """Logs without tracked metrics (pretrain.track_every: 0): the training figures say so in every
    panel; a run group's page comes after the named figures."""
    table = table[table["seed_group"].isin(["ss-iid-100", "moco-100", "random-init"]) | table["seed_group"].isna()]
    table = table.assign(group=table["method"])  # one run group per method
    spectra = {run: np.geomspace(5.0, 5.0 * 10.0 ** -(1 + 0.1 * i), 16) for i, run in enumerate(table["run"])}
    capture = Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(io, "save_figure", capture)
        paths = training_plots.make_all_figures(table, spectra, _logs(table, tracked=False), tmp_path, ["mocov3"])
    assert paths == [*(tmp_path / name for name in FIGURE_NAMES), layout.run_group_figure(tmp_path, "mocov3")]
    assert_valid_pngs(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*FIGURE_NAMES, "run_groups"])  # no temporary files
    metric_panels = capture.figures["mocov3.png"].axes[3:3 + len(SPECTRUM_METRICS)]  # after loss, lr, z_std
    assert [ax.texts[0].get_text() for ax in metric_panels] == [training_plots.NO_TRACKING] * len(SPECTRUM_METRICS)
    assert plt.get_fignums() == []
    for name in ("tracked_metrics.png", "collapse_over_training.png"):
        axes = capture.figures[name].axes
        assert len(axes) == len(SPECTRUM_METRICS), name  # one row of panels
        for ax in axes:
            assert _run_lines(ax) == [] and [text.get_text() for text in ax.texts] == [training_plots.NO_TRACKING]
    assert "ρ = −1.00" in capture.figures["forecast.png"].axes[0].get_title()  # the forecast needs no logs


def test_tracked_metrics_one_line_per_tracked_run_and_the_random_init_floor(table: pd.DataFrame,
                                                                            tmp_path: Path) -> None:
    fig = _draw(training_plots.plot_tracked_metrics, table, _logs(table), tmp_path=tmp_path)
    assert len(fig.axes) == len(SPECTRUM_METRICS)
    runs = _tracked_runs(table)
    last = {run: collapse_runs.metrics_of(top1) for run, top1 in zip(table["run"], table["linear_top1"])}
    for ax, metric in zip(fig.axes, SPECTRUM_METRICS):
        info = LABEL_FREE_METRICS[metric]
        assert ax.get_ylabel() == info.axis_label and "less collapse" in ax.get_ylabel() and ax.get_title() == info.name
        lines = _run_lines(ax)
        assert len(lines) == len(runs)  # every seed, the untracked setting left out
        assert sorted(line.get_ydata()[-1] for line in lines) == pytest.approx(sorted(last[r][metric] for r in runs))
        floor = [line for line in ax.get_lines() if line.get_linestyle() == "--" and line not in lines]
        assert len(floor) == 1 and floor[0].get_ydata()[0] == pytest.approx(table.loc[
            table["method"] == "random-init", metric].mean())
    colors = {mcolors.to_hex(line.get_color()) for line in _run_lines(fig.axes[0])}
    assert colors == {mcolors.to_hex(plots.METHOD_COLORS[m]) for m in ("simsiam", "mocov3")}  # colour = method
    legend = fig.legends[0]
    labels = [text.get_text() for text in legend.get_texts()]
    assert len(labels) == 4 + 1 and labels[-1].startswith("random init")  # four tracked settings, the floor
    assert "SimSiam IID · resnet18 · 10% (3 seeds)" in labels
    simsiam = [h for h, label in zip(legend.legend_handles, labels) if label.startswith("SimSiam")]
    assert len({h.get_linestyle() for h in simsiam}) == 3  # settings of one method told apart by dash
    _legend_outside(fig, legend)


def test_without_any_train_log_the_tracked_figure_says_so(table: pd.DataFrame, tmp_path: Path) -> None:
    fig = _draw(training_plots.plot_tracked_metrics, table, {}, tmp_path=tmp_path)
    assert len(fig.axes) == len(SPECTRUM_METRICS)
    assert all(ax.texts[0].get_text() == training_plots.NO_TRACKING for ax in fig.axes)


def test_collapse_over_training_bands_the_seeds_of_each_setting(table: pd.DataFrame, tmp_path: Path) -> None:
    fig = _draw(training_plots.plot_collapse_over_training, table, _logs(table), tmp_path=tmp_path)
    axes = np.array(fig.axes).reshape(2, len(SPECTRUM_METRICS))
    methods = [text.get_text() for text in axes[0, -1].get_legend().get_texts()]
    strategies = [text.get_text() for text in axes[1, -1].get_legend().get_texts()]
    assert [label.split(" · ")[0] for label in methods[:-1]] == ["SimSiam IID", "MoCo-v3 IID"]  # IID, full data
    assert len(strategies) == 3 + 1 and all(label.startswith("SimSiam") for label in strategies[:-1])
    assert axes[0, -1].get_legend().get_title().get_text().startswith("methods")
    final = collapse_runs.metrics_of(collapse_runs.SETTINGS["moco-100"][3])["auc"]
    seeds = [final - collapse_runs.SEED_STEP * seed / 200 for seed in collapse_runs.SEEDS]  # auc falls with top1
    moco = [line for line in _run_lines(axes[0, 0])
            if mcolors.to_hex(line.get_color()) == mcolors.to_hex(plots.METHOD_COLORS["mocov3"])]
    assert len(moco) == 1 and moco[0].get_ydata()[-1] == pytest.approx(np.mean(seeds))  # the mean over seeds
    bands = axes[0, 0].collections
    assert len(bands) == 2  # ± sd of each setting of three seeds
    top = max(path.vertices[:, 1].max() for band in bands for path in band.get_paths())
    assert top > max(line.get_ydata().max() for line in _run_lines(axes[0, 0]))
    assert axes[0, 0].get_xlabel() == "" and axes[1, 0].get_xlabel() == "epoch"


def test_a_row_without_tracked_settings_is_left_out(table: pd.DataFrame, tmp_path: Path) -> None:
    logs = {run: log for run, log in _logs(table).items() if run.startswith("moco")}
    fig = _draw(training_plots.plot_collapse_over_training, table, logs, tmp_path=tmp_path)
    assert len(fig.axes) == len(SPECTRUM_METRICS)  # the methods only: no SimSiam run was tracked
    assert fig.axes[-1].get_legend().get_texts()[0].get_text().startswith("MoCo-v3 IID")


def test_forecast_panels_show_every_run_and_the_tables_correlation(table: pd.DataFrame, tmp_path: Path) -> None:
    fig = _draw(training_plots.plot_forecast, table, tmp_path=tmp_path)
    assert len(fig.axes) == len(LABEL_FREE_METRICS)
    pooled = forecast.forecast_table(table)
    pooled = pooled[(pooled["group"] == forecast.POOLED) & (pooled["probe"] == "linear_top1")].set_index("metric")
    for ax, (metric, info) in zip(fig.axes, LABEL_FREE_METRICS.items()):
        assert ax.get_xlabel() == info.axis_label
        row = pooled.loc[metric]
        if np.isnan(row["spearman"]):
            assert "no ρ" in ax.get_title()
        else:
            rho = forecast.format_estimate(row["spearman"], row["spearman_low"], row["spearman_high"])
            assert f"ρ = {rho}" in ax.get_title() and f"n = {row['n_runs']}" in ax.get_title()
            assert row["verdict"] in ax.get_title()
        offsets = np.concatenate([c.get_offsets() for c in ax.collections])
        finite = np.isfinite(np.asarray(offsets, dtype=float)).all(axis=1)
        assert finite.sum() == row["n_runs"] + 3  # every trained run with a value, and the three random-init seeds
        grey_x = [c for c in ax.collections if len(c.get_offsets()) == 3
                  and mcolors.to_hex(c.get_facecolor()[0]) == mcolors.to_hex(plots.BASELINE_COLOR)]
        assert len(grey_x) == 1
        levels = {line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"}
        assert levels == {100.0 / collapse_runs.NUM_CLASSES}  # the chance level
    assert "ρ = −1.00" in fig.axes[0].get_title() and "forecasts" in fig.axes[0].get_title()  # AUC, by design
    _legend_outside(fig, fig.legends[0])


def test_forecast_with_too_few_runs_still_draws(tmp_path: Path) -> None:
    records = [r for r in collapse_runs.experiment_records() if r["run"] in ("ss-iid-100-s0", "random-init-s0")]
    fig = _draw(training_plots.plot_forecast, build_run_table(records), tmp_path=tmp_path)
    assert len(fig.axes) == len(LABEL_FREE_METRICS)
    assert all("too few runs" in ax.get_title() for ax in fig.axes)


# --------------------------------------------------------------------------- run groups


def test_a_run_groups_page_draws_each_of_its_runs_in_every_curve(table: pd.DataFrame, tmp_path: Path) -> None:
    table = table.assign(group=table["method"])  # one run group per method
    logs = {run: training_plots.read_train_log(collapse_runs.write_train_log(
                tmp_path / f"{run}.csv", collapse_runs.train_log(collapse_runs.metrics_of(top1), EPOCHS, TRACK_EVERY)))
            for run, method, top1 in zip(table["run"], table["method"], table["linear_top1"])
            if method not in ("random-init", "raw-pixels")}
    fig = _draw(training_plots.plot_run_group, table, logs, "simsiam", tmp_path=tmp_path)
    members = table.loc[table["group"] == "simsiam", "run"].tolist()
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels[:3]] == ["loss", "lr", "z_std"]
    assert [ax.get_title() for ax in panels[3:]] == [LABEL_FREE_METRICS[m].name for m in SPECTRUM_METRICS]
    for ax, column in zip(panels, ["loss", "lr", "z_std", *SPECTRUM_METRICS]):
        runs = [line for line in ax.get_lines() if len(line.get_xdata()) > 2]  # reference lines have two points
        assert len(runs) == len(members), column  # every seed of every setting of the group, no other run
        assert sorted(line.get_ydata()[-1] for line in runs) == pytest.approx(
            sorted(logs[run][column].dropna().iloc[-1] for run in members)), column
    healthy = [line for line in panels[2].get_lines() if len(line.get_xdata()) == 2]
    assert [line.get_ydata()[0] for line in healthy] == [pytest.approx(logs[members[0]]["z_std_healthy"].iloc[-1])]
    assert "simsiam" in fig.legends[0].get_title().get_text()
