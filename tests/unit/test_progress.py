"""Progress: plain lines with rate and ETA at a pace in logs, a tqdm bar on a terminal."""

from __future__ import annotations

import io

import pytest

from siamcollapse import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def clock(monkeypatch):
    """A clock the test moves by hand."""
    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


def test_durations_read_at_a_glance():
    assert [progress.duration(s) for s in (0, 45.4, 185, 3600 * 2 + 7 * 60 + 30)] == ["0s", "45s", "3m 05s", "2h 07m"]
    assert progress.eta(10.0, 1, 4) == "30s" and progress.eta(10.0, 0, 4) == "" and progress.eta(10.0, 4, 4) == ""


def test_a_log_gets_a_line_at_a_pace_with_rate_and_eta_and_one_when_done(clock):
    log = io.StringIO()
    for done, at in [(1, 0.0), (2, 1.0), (3, 2.0), (4, 11.0), (5, 12.0), (6, 13.0)]:
        clock[0] = at
        progress.report("decode x", done, 6, stream=log)
    # 3 images in 11 s after the first: 0.27/s, 2 left: about 7 s
    assert log.getvalue().splitlines() == ["decode x: 4/6 (66%), 0.27 images/s, ETA 7s",
                                           "decode x: 6/6 (100%), 0.38 images/s, 13s"]
    assert "\r" not in log.getvalue()


def test_the_rate_is_per_second_of_the_loop_and_a_new_loop_starts_afresh(clock):
    log = io.StringIO()
    for done in range(0, 1001, 100):
        clock[0] = done / 50  # 50 images/s
        progress.report("generate y", done, 1000, stream=log)
    assert log.getvalue().splitlines() == ["generate y: 500/1000 (50%), 50 images/s, ETA 10s",
                                           "generate y: 1000/1000 (100%), 50 images/s, 20s"]
    clock[0] = 100.0
    progress.report("generate y", 1, 1, stream=log)  # the finished loop left no state behind
    assert log.getvalue().splitlines()[-1] == "generate y: 1/1 (100%), 0s"


def test_a_terminal_gets_a_bar_with_rate_and_eta():
    terminal = Terminal()
    for done in range(1, 5):
        progress.report("extract z", done, 4, stream=terminal)
    shown = terminal.getvalue()
    assert "\r" in shown and "extract z" in shown and "4/4" in shown and "images/s" in shown
    assert "extract z" not in progress._loops  # closed when done


def test_the_epoch_line_gives_the_runs_elapsed_time_and_its_eta_until_the_last_epoch():
    from siamcollapse.training.loop import _format_row

    row = {"epoch": 2, "loss": 0.5, "lr": 0.1, "images_per_s": 100, "z_std": 0.2, "z_std_healthy": 0.25,
           "elapsed_s": 130.0}
    assert _format_row(row, 10).endswith("  2m 10s, ETA 8m 40s")  # 65 s an epoch, 8 to go
    assert _format_row({**row, "epoch": 10}, 10).endswith("  2m 10s")


def test_a_label_reused_after_a_loop_cut_short_starts_a_new_loop(clock):
    log = io.StringIO()
    progress.report("probe", 3, 10, stream=log)  # cut short: never reaches 10
    clock[0] = 50.0
    progress.report("probe", 1, 2, stream=log)
    clock[0] = 51.0
    progress.report("probe", 2, 2, stream=log)
    assert log.getvalue().splitlines() == ["probe: 2/2 (100%), 1 images/s, 1s"]
