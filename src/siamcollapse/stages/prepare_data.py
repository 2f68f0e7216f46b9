"""Generate the embedded procedural dataset (ImageFolder PNGs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..data.embedded import generate

RESOURCES = "default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="dataset root to create")


def run(args: argparse.Namespace, config: dict[str, Any]) -> None:
    generate(args.out, **config["embedded"])
