"""Helpers to run the real Snakemake and DVC CLIs on the repository's workflow in scratch directories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SNAKEMAKE = BIN / "snakemake"
# What a clone of the project holds that the workflow engines read (tests edit copies of these).
PROJECT_FILES = ["Snakefile", "workflow", "configs", "config.yaml", "profiles", "README.md", "dvc.yaml",
                 ".dvcignore", ".dvc/config"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in tests/workflow/ runs a workflow engine (or reads its files): mark it, so that
    `-m "not workflow"` (make test-fast) leaves them all out."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.workflow)


def runs_of_test_config(path: Path = REPO / "configs" / "test.yaml") -> list[str]:
    """Every run of configs/test.yaml (or of the config at ``path``), as the plan names them."""
    from siamcollapse import plan
    from siamcollapse.config import load_experiment

    return list(plan.expand_runs(load_experiment([path])))


def tool_env() -> dict[str, str]:
    """The environment of a tool run by the tests: this environment's commands first on PATH."""
    return {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}


def _run(cmd: list[str], cwd: Path, check: bool, timeout: int) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=tool_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def snakemake(workdir: Path, *args: str | Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile with ``workdir`` as working directory."""
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *map(str, args)]
    return _run(cmd, workdir, check, timeout)


def in_project(project: Path, tool: str, *args: str | Path, check: bool = True, timeout: int = 600):
    """Run ``tool`` (snakemake, dvc, siamcollapse) inside a project copy, as a user in a clone would."""
    return _run([str(BIN / tool), *map(str, args)], project, check, timeout)


def stand_in_image_folder(root: Path) -> Path:
    """An image folder that passes the pre-flight check (every split, one class, one image file,
    never decoded): enough for dry-runs of the configs that read a dataset from disk."""
    for split in ("train", "val"):
        (root / split / "class").mkdir(parents=True, exist_ok=True)
        (root / split / "class" / "0.png").write_bytes(b"")
    return root


def copy_project(dest: Path) -> Path:
    """The project's workflow files in ``dest``, a DVC project without git (the code stays installed)."""
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    # what `dvc config core.no_scm true` writes, without starting DVC (a second of CPU per copy)
    dvc_config = dest / ".dvc" / "config"
    text = dvc_config.read_text()
    assert text.startswith("[core]\n"), dvc_config
    dvc_config.write_text(text.replace("[core]\n", "[core]\n    no_scm = true\n", 1))
    return dest


def edit_yaml(path: Path, *changes: tuple[str, object]) -> None:
    """Set dotted keys of a YAML file, e.g. ("linear_probe.lr", 0.2)."""
    data = yaml.safe_load(path.read_text())
    for dotted, value in changes:
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def copy_tree(source: Path, dest: Path) -> Path:
    """A copy of a project directory that keeps modification times, so Snakemake sees the same
    state (files and .snakemake metadata) in the copy as in the source."""
    shutil.copytree(source, dest, symlinks=True)
    return dest


def shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch directory every pytest-xdist worker of this session sees (the session's own
    base directory when pytest runs without workers)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def local_test_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONE complete local run of configs/test.yaml (`snakemake --cores 2`), shared by the tests that
    need its results, in whichever worker they run: the first to ask makes it, under a lock, and
    the others wait for it. Read it, never change it: a test that edits its project works on a
    copy (`copy_tree`)."""
    shared = shared_tmp(tmp_path_factory)
    project, complete = shared / "local-run" / "project", shared / "local-run" / "complete"
    with FileLock(shared / "local-run.lock"):
        if not complete.is_file():
            shutil.rmtree(project.parent, ignore_errors=True)  # what a failed attempt left
            copy_project(project)
            in_project(project, "snakemake", "--cores", "2", "--configfile", "configs/test.yaml")
            complete.touch()
    return project


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")
