"""Progress of long loops, for a person to watch: on a terminal a bar with rate and ETA (tqdm);
in a log (Snakemake, SLURM, DVC: no terminal) plain lines at a steady pace with the same rate
and ETA, never carriage returns.

Imports nothing of the project, so every layer may report progress.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, TextIO

EVERY_S = 10.0  # a pace for logs: a long decode says how far it is, a short one prints one line


def duration(seconds: float) -> str:
    """``45s``, ``3m 05s``, ``2h 07m``: what a person reads at a glance."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def eta(elapsed_s: float, done: float, total: float) -> str:
    """The time left at the pace so far (empty when nothing or everything is done)."""
    if done <= 0 or done >= total:
        return ""
    return duration(elapsed_s / done * (total - done))


@dataclass
class _Loop:
    started: float
    first_done: int
    last_line: float
    last_done: int = 0
    bar: Any = None  # a tqdm bar on a terminal


_loops: dict[str, _Loop] = {}  # label -> the loop in progress


def report(label: str, done: int, total: int, unit: str = "images", stream: TextIO | None = None) -> None:
    """``done`` of ``total`` ``unit`` of the loop ``label``: a bar on a terminal, else a line at
    most every EVERY_S seconds and one when done (with the rate, and the ETA while running)."""
    stream = sys.stderr if stream is None else stream
    now = time.monotonic()
    loop = _loops.get(label)
    if loop is not None and done < loop.last_done:  # the same label again, after a loop cut short
        _loops.pop(label)
        loop = None
    if loop is None:
        loop = _loops[label] = _Loop(now, done, now)
        if stream.isatty():
            from tqdm import tqdm

            loop.bar = tqdm(total=total, desc=label, unit=f" {unit}", file=stream, dynamic_ncols=True)
    loop.last_done = done
    if loop.bar is not None:
        loop.bar.update(done - loop.bar.n)
    elif done >= total or now - loop.last_line >= EVERY_S:
        elapsed = now - loop.started
        rate = (done - loop.first_done) / elapsed if elapsed > 0 else 0.0
        left = eta(elapsed, done - loop.first_done, total - loop.first_done)
        pace = f", {rate:.0f} {unit}/s" if rate >= 10 else f", {rate:.2g} {unit}/s" if rate else ""
        when = f", ETA {left}" if left else f", {duration(elapsed)}" if done >= total else ""
        print(f"{label}: {done}/{total} ({100 * done // max(total, 1)}%){pace}{when}", file=stream, flush=True)
        loop.last_line = now
    if done >= total:
        if loop.bar is not None:
            loop.bar.close()
        del _loops[label]
