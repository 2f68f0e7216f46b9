"""The code files of each stage: static import closure, package __init__ files that hold code,
config data files."""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from siamcollapse import codedeps
from siamcollapse.cli import STAGE_HELP

PKG = codedeps.PACKAGE_DIR
STAGE_MODULES = sorted(name.replace("-", "_") for name in STAGE_HELP)


def relative(paths, root: Path = PKG) -> set[str]:
    return {p.relative_to(root).as_posix() for p in paths}


# --- the real package ---------------------------------------------------------------------


def test_module_path_finds_modules_and_packages():
    assert codedeps.module_path("siamcollapse") == PKG / "__init__.py"
    assert codedeps.module_path("siamcollapse.stages") == PKG / "stages" / "__init__.py"
    assert codedeps.module_path("siamcollapse.stages.knn") == PKG / "stages" / "knn.py"
    assert codedeps.module_path("siamcollapse.no_such_module") is None


def test_knn_stage_code_is_its_own_code_path_and_the_config_loader():
    files = relative(codedeps.stage_code("knn"))
    assert {"stages/knn.py", "evaluation/knn.py", "io.py", "layout.py", "progress.py"} <= files
    assert "__init__.py" in files  # the package on the way (it holds code: its version)
    assert not files & {"stages/__init__.py", "evaluation/__init__.py"}  # only docstrings: no code
    assert {"config.py", "config.schema.yaml"} <= files  # it reads the experiment config
    assert not files & {"training/loop.py", "stages/pretrain.py", "stages/linear_probe.py", "evaluation/linear_probe.py",
                        "reporting/plots.py", "cli.py", "codedeps.py"}
    # a narrow dependency: editing code the kNN does not run reruns no kNN (issue 12 set at most 8)
    assert len({f for f in files if f.endswith(".py")}) <= 8, sorted(files)


# What only a training-side edit may rerun: the augmentation, datasets, models, methods, the loop.
TRAINING_SIDE = {"data/augment.py", "data/sources.py", "models/backbones.py", "models/vit.py", "methods/__init__.py",
                 "training/loop.py", "evaluation/features.py"}


@pytest.mark.parametrize("stage", ["knn", "linear_probe"])
def test_stages_that_read_cached_features_do_not_depend_on_augmentation_or_datasets(stage):
    """Editing the training augmentation reruns pretraining and what consumes its checkpoint, never
    a probe of cached features (the linear probe reads the checkpoint only for its fingerprint)."""
    files = relative(codedeps.stage_code(stage))
    assert {"io.py", "layout.py"} <= files  # where feature loading lives
    assert not files & {"data/augment.py", "data/sources.py", "evaluation/features.py", "training/loop.py"}
    if stage == "knn":
        assert not files & TRAINING_SIDE
        assert len([f for f in files if f.endswith(".py")]) <= 8  # was 18 with features.py's imports


def test_subsetting_reads_labels_only_so_a_training_side_edit_keeps_the_subsets():
    """make_subset reads the labels (data/catalog.py), not the decoding and augmentation code."""
    files = relative(codedeps.stage_code("make_subset"))
    assert {"data/catalog.py", "data/folders.py", "data/subsets.py"} <= files
    assert not files & TRAINING_SIDE


@pytest.mark.parametrize("stage", ["extract_features", "extract_raw_pixels", "pretrain", "knn", "linear_probe"])
def test_no_computing_stage_depends_on_the_report_code(stage):
    """Rewording a table's Markdown note (reporting/) reruns only the tables and figures."""
    assert not any(f.startswith("reporting/") for f in relative(codedeps.stage_code(stage)))


def test_pretrain_stage_code_contains_the_training_loop_and_the_schema():
    files = relative(codedeps.stage_code("pretrain"))
    assert {"stages/pretrain.py", "training/loop.py", "training/checkpoint.py", "plan.py",
            "methods/__init__.py", "methods/simsiam.py", "models/backbones.py", "data/subsets.py"} <= files
    assert {"config.py", "config.schema.yaml"} <= files
    assert not files & {"evaluation/knn.py", "reporting/plots.py", "stages/knn.py"}


def test_stages_that_read_no_config_do_not_depend_on_the_config_loader():
    for stage in ["collect_tables", "plot_figures"]:
        files = relative(codedeps.stage_code(stage))
        assert f"stages/{stage}.py" in files and "reporting/tables.py" in files
        assert "config.py" not in files and "config.schema.yaml" not in files
        assert "training/loop.py" not in files
    assert "reporting/plots.py" in relative(codedeps.stage_code("plot_figures"))
    assert "reporting/plots.py" not in relative(codedeps.stage_code("collect_tables"))


@pytest.mark.parametrize("stage", STAGE_MODULES)
def test_every_stage_has_sorted_existing_files_and_reads_config_iff_it_has_resources(stage: str):
    files = codedeps.stage_code(stage)
    assert files == sorted(set(files)) and all(p.is_file() and PKG in p.parents for p in files)
    assert {"__init__.py", f"stages/{stage}.py"} <= relative(files)
    module = importlib.import_module(f"siamcollapse.stages.{stage}")
    reads = module.RESOURCES is not None
    assert codedeps.reads_config(PKG / "stages" / f"{stage}.py") is reads
    assert ("config.schema.yaml" in relative(files)) is reads


@pytest.mark.parametrize("stage", ["knn", "collect_tables"])
def test_every_module_a_stage_loads_is_declared(stage: str):
    """What Python really imports for the stage (the modules that hold code) is a subset of the
    static closure."""
    script = textwrap.dedent(f"""
        import json, sys
        import siamcollapse.stages.{stage}
        print(json.dumps(sorted(m.__file__ for name, m in sys.modules.items()
                                if name.split(".")[0] == "siamcollapse" and getattr(m, "__file__", None))))
    """)
    loaded = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                       check=True).stdout)
    with_code = {path for path in map(Path, loaded) if codedeps.holds_code(path)}
    assert with_code and with_code <= set(codedeps.module_closure(f"siamcollapse.stages.{stage}"))


def test_a_module_outside_the_package_is_an_error():
    with pytest.raises(ValueError, match="siamcollapse.no_such_module"):
        codedeps.module_closure("siamcollapse.no_such_module")


def test_reads_config_needs_resources(tmp_path: Path):
    (tmp_path / "none.py").write_text("RESOURCES = None\n")
    (tmp_path / "some.py").write_text('"""doc"""\nimport os\nRESOURCES = "extract"\n')
    (tmp_path / "missing.py").write_text("def run(args, config):\n    RESOURCES = 1\n")
    assert codedeps.reads_config(tmp_path / "none.py") is False
    assert codedeps.reads_config(tmp_path / "some.py") is True
    with pytest.raises(ValueError, match="RESOURCES"):
        codedeps.reads_config(tmp_path / "missing.py")


# --- a small fake package -----------------------------------------------------------------

FAKE = {
    "__init__.py": "VERSION = 1\n",
    "config.py": "import yaml\n",
    "config.schema.yaml": "{}\n",
    "plan.py": "from .config import load\n",
    "unused.py": "X = 1\n",
    "a/__init__.py": "from .h import thing\n",
    "a/b.py": """
        import os
        import numpy as np
        from . import c
        from ..d import e
        import siamcollapse.f
        from .. import g
        from siamcollapse.a.h import thing
        from .c import not_a_module


        def later():
            from .lazy import x
            return x
    """,
    "a/c.py": "from . import b  # a cycle\n",
    "a/h.py": "X = 1\n",
    "a/lazy.py": "X = 1\n",
    "a/unimported.py": "from .. import plan\n",
    "d/__init__.py": '"""Only a docstring: on the import path, but no code dependency."""\n',
    "d/e.py": "from .deep import *\n",
    "d/deep.py": "X = 1\n",
    "f.py": "X = 1\n",
    "g.py": "X = 1\n",
    "stages/__init__.py": "HELP = {}\n",
    "stages/reader.py": 'from ..a import b\n\nRESOURCES = "default"\n',
    "stages/nonreader.py": "from ..f import x\n\nRESOURCES = None\n",
}


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / codedeps.PACKAGE
    for name, text in FAKE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.setattr(codedeps, "PACKAGE_DIR", root)
    codedeps.module_closure.cache_clear()
    yield root
    codedeps.module_closure.cache_clear()  # never leave fake results for the real package


def test_closure_follows_every_import_form(fake_package: Path):
    files = relative(codedeps.module_closure("siamcollapse.a.b"), fake_package)
    assert files == {
        "__init__.py", "a/__init__.py", "a/b.py",
        "a/c.py",  # from . import c
        "d/e.py",  # from ..d import e (d/__init__.py holds only its docstring)
        "d/deep.py",  # from .deep import * (in d/e.py)
        "f.py",  # import siamcollapse.f
        "g.py",  # from .. import g
        "a/h.py",  # from siamcollapse.a.h import thing
        "a/lazy.py",  # inside a function
    }


def test_closure_of_a_package_init_resolves_relative_imports_from_the_package(fake_package: Path):
    (fake_package / "d" / "__init__.py").write_text("from . import e\nfrom .. import g\n")
    files = relative(codedeps.module_closure("siamcollapse.d"), fake_package)
    assert files == {"__init__.py", "d/__init__.py", "d/e.py", "d/deep.py", "g.py"}


def imports_of_the_whole_syntax_tree(source: str) -> list[str]:
    """Every import statement of a module, found by walking its complete syntax tree."""
    return sorted(ast.unparse(node) for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Import | ast.ImportFrom))


def test_the_import_scan_finds_what_a_full_parse_finds_in_every_module_of_the_package():
    for path in PKG.rglob("*.py"):
        source = path.read_text()
        found = sorted(ast.unparse(node) for node in codedeps._import_statements(source))
        assert found == imports_of_the_whole_syntax_tree(source), path


@pytest.mark.parametrize("source", [
    "from .a import (\n    b,  # the first\n    c,\n)\nimport os, \\\n    sys\n",
    "def f():\n    if True:\n        from . import lazy\n    return lazy\n",
    '"""From the start,\nimport what is needed; from here on it is prose."""\nfrom . import x\n',
    "from .a import (b,  # a comment (with parentheses)\n    c)\n",
])
def test_the_import_scan_finds_every_import_form(source: str):
    found = sorted(ast.unparse(node) for node in codedeps._import_statements(source))
    assert found == imports_of_the_whole_syntax_tree(source) and found


def test_a_module_with_only_a_docstring_is_no_dependency_until_it_holds_code(fake_package: Path):
    assert "d/__init__.py" not in relative(codedeps.module_closure("siamcollapse.d.e"), fake_package)
    for text in ['"""Docs."""\nLIMIT = 3\n', "LIMIT = 3\n", '"""Docs."""\nfrom __future__ import annotations\n']:
        (fake_package / "d" / "__init__.py").write_text(text)
        codedeps.module_closure.cache_clear()
        assert "d/__init__.py" in relative(codedeps.module_closure("siamcollapse.d.e"), fake_package), text
    for text in ["", '"""Docs."""\n', "# a comment\n"]:
        (fake_package / "d" / "__init__.py").write_text(text)
        assert not codedeps.holds_code(fake_package / "d" / "__init__.py"), text


def test_fake_stage_code_adds_the_config_loader_only_to_a_stage_that_reads_config(fake_package: Path):
    reader = relative(codedeps.stage_code("reader"), fake_package)
    assert {"stages/__init__.py", "stages/reader.py", "a/b.py", "a/lazy.py", "config.py", "config.schema.yaml"} <= reader
    assert "plan.py" not in reader and "unused.py" not in reader and "a/unimported.py" not in reader
    nonreader = relative(codedeps.stage_code("nonreader"), fake_package)
    assert nonreader == {"__init__.py", "stages/__init__.py", "stages/nonreader.py", "f.py"}


def test_a_missing_parent_package_is_an_error(fake_package: Path):
    (fake_package / "d" / "__init__.py").unlink()
    with pytest.raises(ValueError, match="siamcollapse.d"):
        codedeps.module_closure("siamcollapse.d.e")


def test_a_stages_code_digest_names_each_of_its_files_with_the_hash_of_its_bytes():
    lines = codedeps.code_digest("knn").splitlines()
    files = codedeps.stage_code("knn")
    assert len(lines) == len(files)
    for line, path in zip(lines, files, strict=True):
        digest, name = line.split("  ")
        assert name == str(path.relative_to(codedeps.PACKAGE_DIR)) and digest == hashlib.sha256(path.read_bytes()).hexdigest()
