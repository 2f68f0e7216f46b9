"""Every script in benchmarks/ runs, at a tiny size, as a user would run it: a change that breaks
one fails the suite (its numbers are not checked here; benchmarks print ratios, tests assert none)."""

from __future__ import annotations

import contextlib
import io
import runpy
import sys
from pathlib import Path

import pytest
import torch

from .test_stages import write_config

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_benchmark(name: str, *args: str | Path) -> str:
    """The script run as ``python benchmarks/NAME ARGS`` runs it (as __main__, with that argv), in
    this process: a new interpreter would spend more time importing torch than the tiny run takes."""
    threads = torch.get_num_threads()
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setattr(sys, "argv", [str(BENCHMARKS / name), *map(str, args)])
        mp.syspath_prepend(str(BENCHMARKS))  # as `python benchmarks/NAME` puts the script's folder first
        try:
            runpy.run_path(str(BENCHMARKS / name), run_name="__main__")
        finally:
            torch.set_num_threads(threads)  # each script sets its own
    return out.getvalue()


def test_every_benchmark_script_has_a_test():
    tested = {"pretrain_throughput.py", "gpu_throughput.py", "augment_throughput.py", "supervised_ceiling.py"}
    assert {path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_")} == tested


def test_pretrain_throughput_measures_three_loops():
    out = run_benchmark("pretrain_throughput.py", "--steps", 2, "--threads", 1, "--images-per-class", 7,
                        "--batch", 16, "--width", 8)
    lines = [line for line in out.splitlines() if "x reference" in line]
    assert len(lines) == 3 and "1.00x reference" in lines[0]


def test_gpu_throughput_measures_three_loops_of_each_shape():
    """On a CPU at a tiny size (the GPU run is docs/scaling.md's): each shape's three loops, the
    reference at 1.00x, and the stage's ratio to the ceiling."""
    out = run_benchmark("gpu_throughput.py", "--shape", "resnet18-32", "--shape", "resnet50-224", "--steps", 1,
                        "--images", 20, "--workers", 0, "--batch", 4, "--width", 8, "--threads", 1)
    headers = [line for line in out.splitlines() if line.startswith("SimSiam")]
    assert [h.split("[")[-1] for h in headers] == ["resnet18-32]", "resnet50-224]"]
    assert "32 px" in headers[0] and "224 px" in headers[1]
    rows = [line.split()[1] for line in out.splitlines() if "x reference" in line]
    assert rows == ["reference", "siamcollapse", "ceiling"] * 2
    assert out.count("1.00x reference") >= 2 and out.count("(b)/(c)") == 2


def test_augment_throughput_runs():
    out = run_benchmark("augment_throughput.py", "--batch", 4, "--repeats", 1, "--threads", 1)
    assert "speed-up:" in out


@pytest.mark.parametrize("seeds", [["0", "1"]])
def test_supervised_ceiling_reports_every_seed_and_their_mean(tiny_dataset, tmp_path, seeds):
    config = write_config(tmp_path, tiny_dataset)
    out = run_benchmark("supervised_ceiling.py", "--config", config, "--seeds", *seeds, "--threads", 1)
    assert [line.split(":")[0].strip() for line in out.splitlines() if "seed" in line] == [f"seed {s}" for s in seeds]
    assert f"(n={len(seeds)})" in out
