"""The linters are part of the suite: ruff on the Python code, snakefmt on the Snakemake rules
(configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_ruff_passes():
    proc = run("ruff", "check", "--quiet", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_leaves_the_rules_unchanged():
    proc = run("snakefmt", "--check", "Snakefile", "workflow/rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr
