"""The source files a stage runs: its module and every siamcollapse module it imports.

Both engines declare these files as the stage's code dependencies (Snakemake inputs, DVC deps),
so editing a module reruns exactly the stages whose code path contains it. The import graph is
read statically (``ast``, statement by statement), imports inside functions included, without
importing anything; an import written out in a docstring counts as one (a dependency too many,
never one too few). A module that holds nothing but its docstring (most package ``__init__.py``
files) is on the import path but is no dependency: nothing in it can change what a stage
computes, and once it holds a statement it is one (``siamcollapse dvc-yaml --check`` then asks
for dvc.yaml to be regenerated).
"""

from __future__ import annotations

import ast
import hashlib
import re
from functools import cache
from pathlib import Path

PACKAGE = "siamcollapse"
PACKAGE_DIR = Path(__file__).resolve().parent
STAGES_DIR = PACKAGE_DIR / "stages"
# Files a module reads at run time, besides Python code.
DATA_FILES = {f"{PACKAGE}.config": ["config.schema.yaml"]}


def stage_modules() -> list[Path]:
    """The file of every stage module (``siamcollapse/stages/<stage>.py``), sorted by name."""
    return [path for path in sorted(STAGES_DIR.glob("*.py")) if path.name != "__init__.py"]


def module_path(name: str) -> Path | None:
    """``siamcollapse.a.b`` -> its .py file (or package __init__.py); None if there is none."""
    parts = name.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# An import statement from its keyword to its end: a parenthesised name list, backslash-continued
# lines, or the rest of the line.
_IMPORT_STATEMENT = re.compile(r"^[ \t]*(?:from[ \t]+[\w.]+[ \t]+import[ \t]*\([^)]*\)|(?:from|import)[ \t](?:.*\\\n)*.*)",
                               re.MULTILINE)


@cache
def _import_statements(source: str) -> tuple[ast.stmt, ...]:
    """The import statements of a module. Parsing only these, not the whole module, keeps every
    Snakemake start (each dry run, each SLURM job step, each ``dvc-yaml``) from spending most of a
    second on the package's syntax trees; keyed by the source text, so an edited file is read
    anew. A line that starts like an import but does not parse alone (prose in a docstring, a
    comment inside a name list) sends the module through a full parse, so no import is missed."""
    found = []
    for match in _IMPORT_STATEMENT.finditer(source):
        try:
            found.extend(ast.parse(match[0].strip()).body)
        except SyntaxError:
            found = list(ast.walk(ast.parse(source)))
            break
    return tuple(node for node in found if isinstance(node, ast.Import | ast.ImportFrom))


def holds_code(path: Path) -> bool:
    """Whether a module has any statement besides its docstring."""
    source = path.read_text()
    if _import_statements(source):
        return True  # an import is a statement (only modules without one need a full parse)
    body = ast.parse(source).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return bool(body)


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _imported_modules(name: str, path: Path) -> set[str]:
    return set(_imports_in(name, path, path.read_text()))


@cache
def _imports_in(name: str, path: Path, source: str) -> frozenset[str]:
    found: set[str] = set()
    for node in _import_statements(source):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        else:
            if node.level:
                anchor = _package_of(name, path).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import module`
    return frozenset(m for m in found if m.split(".")[0] == PACKAGE and module_path(m) is not None)


def direct_imports(name: str) -> set[str]:
    """The package modules that module ``name`` imports itself (not transitively)."""
    path = module_path(name)
    if path is None:
        raise ValueError(f"no module {name} in {PACKAGE_DIR}")
    return _imported_modules(name, path)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@cache
def module_closure(entry: str) -> tuple[Path, ...]:
    """Sorted files of ``entry`` and of everything it imports from the package, transitively.

    Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` too, so they are included
    (those that hold code: see the module docstring).
    """
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        for module in _with_parents(name):
            if module in seen:
                continue
            path = module_path(module)
            if path is None:
                raise ValueError(f"no module {module} in {PACKAGE_DIR}")
            seen.add(module)
            todo.extend(_imported_modules(module, path))
    files = {path for path in map(module_path, seen) if holds_code(path)}
    files.update(PACKAGE_DIR / f for m in seen for f in DATA_FILES.get(m, []))
    return tuple(sorted(files))


_RESOURCES = re.compile(r"^RESOURCES[ \t]*=[ \t]*(\S+)", re.MULTILINE)


def reads_config(stage_path: Path) -> bool:
    """Whether a stage module declares a resource family (``RESOURCES = None``: it reads no config)."""
    declared = _RESOURCES.search(stage_path.read_text())
    if declared is None:
        raise ValueError(f"{stage_path} does not set RESOURCES")
    return declared[1] != "None"


def stage_code(stage_module: str) -> list[Path]:
    """Code files of ``siamcollapse.stages.<stage_module>`` (e.g. 'pretrain', 'extract_features').

    A stage that reads the experiment config also runs the config loader and its schema.
    """
    entry = f"{PACKAGE}.stages.{stage_module}"
    files = set(module_closure(entry))
    if reads_config(module_path(entry)):
        files.update(module_closure(f"{PACKAGE}.config"))
    return sorted(files)


def code_digest(stage_module: str) -> str:
    """One line per code file of the stage: its path in the package and the SHA-256 of its bytes.

    Snakemake takes a small file holding this (``layout.OutputTree.code_stamp``) as each job's code
    input, rewritten only when the digest changes: an edit reruns exactly the stages that run the
    edited file (a checkout that only touches files reruns nothing), and a job's summary names one
    file instead of the dozens it runs. DVC hashes the files themselves (dvc.yaml lists them).
    """
    return "".join(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(PACKAGE_DIR)}\n"
                   for path in stage_code(stage_module))
