"""`siamcollapse config-docs`: docs/config.md, the reference of every config key, from the schema.

One table per top-level section: each key (dotted; `<group>`, `<name>` stand for names you
choose), its type, its default and its description, as ``config.schema.yaml`` states them. The
schema stays the one source; ``--check`` fails when the committed file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import SCHEMA_PATH, load_yaml
from .io import write_text

DEFAULT_OUT = Path("docs/config.md")
HEADER = """# Configuration reference

Generated from `src/siamcollapse/config.schema.yaml` by `siamcollapse config-docs` (a test fails
when this file is stale): every key an experiment config may set, with its type, default and
meaning. Keys left out take these defaults; unknown keys are an error naming the key.
`config.yaml` (the default experiment) and `configs/` are examples.
"""


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a ``$ref`` into ``$defs`` replaced by the definition (the node's own keys win)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target = root["$defs"][ref.rsplit("/", 1)[-1]]
    return {**_resolve(target, root), **{k: v for k, v in node.items() if k != "$ref"}}


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " \\| ".join(json.dumps(v) for v in node["enum"])
    kinds = node.get("type", "object" if "properties" in node else "any")
    return " or ".join(kinds) if isinstance(kinds, list) else kinds


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(node: dict[str, Any]) -> str:
    if "default" not in node:
        return ""
    value = node["default"]
    return f"`{json.dumps(value)}`" if value not in ({}, []) or "properties" not in node else ""


def key_rows(node: dict[str, Any], key: str, root: dict[str, Any], depth: int = 0) -> Iterator[tuple[str, ...]]:
    """(key, type, default, description) of ``node`` and of every key below it."""
    node = _resolve(node, root)
    yield (f"`{key}`", _type(node), _default(node), _cell(node.get("description", "")))
    if depth > 4:  # a method's augment refers to augment: far enough
        return
    for name, child in node.get("properties", {}).items():
        yield from key_rows(child, f"{key}.{name}", root, depth + 1)
    named = node.get("additionalProperties")
    if isinstance(named, dict) and (named.get("properties") or "$ref" in named):
        placeholder = "<group>" if key == "runs" else "<name>"
        yield from key_rows(named, f"{key}.{placeholder}", root, depth + 1)


def render(schema: dict[str, Any]) -> str:
    lines = [HEADER]
    for section, node in schema["properties"].items():
        lines += [f"## `{section}`", "", "| key | type | default | description |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in key_rows(node, section, schema)]
        lines.append("")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="file to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only check the file is current (exit 1 if not)")


def main(args: argparse.Namespace) -> int:
    text = render(load_yaml(SCHEMA_PATH))
    if args.check:
        if not args.out.is_file() or args.out.read_text() != text:
            print(f"siamcollapse config-docs: {args.out} is out of date with the schema; regenerate it: "
                  f"siamcollapse config-docs --out {args.out}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0
