"""Every shell command of README.md and docs/ works as written: each bash block's commands run, in
order, in a fresh copy of the project, as far as this machine allows without running the
experiment (Snakemake plans, DVC reads and its remote, `make -n`); a command whose real run only a
finished experiment shows is checked by the test named for it. A new kind of command fails here
until it gets a check."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.doc_commands import DocCommand, doc_commands

from .conftest import REPO, copy_project, in_project, stand_in_image_folder

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Commands whose real run needs a finished experiment: the tests that run them so.
RUN_BY = {
    ("dvc", "repro"): "tests/workflow/test_shared_run.py::test_dvc_reruns_only_invalidated_stages_of_a_snakemake_run_and_snakemake_agrees",
    ("dvc", "push"): "tests/workflow/test_dvc.py::test_dvc_repro_runs_the_stages_of_a_target_from_an_empty_tree",
    ("dvc", "pull"): "tests/workflow/test_dvc.py::test_dvc_repro_runs_the_stages_of_a_target_from_an_empty_tree",
}
DATASET_ROOT = re.compile(r"(root: )(/[^}\s]+)")  # an absolute dataset root in a --config value


def test_the_docs_have_commands_and_the_markdown_reader_finds_them():
    assert len([command for doc in DOCS for command in doc_commands(doc, REPO)]) >= 15


def named_test_exists(node_id: str) -> bool:
    path, _, name = node_id.partition("::")
    return f"def {name}(" in (REPO / path).read_text()


def run_command(command: DocCommand, project: Path, scratch: Path) -> None:
    """Run ``command`` in ``project`` as far as it can run here, or fail naming it."""
    program, *args = command.words
    if program == "make":
        proc = subprocess.run(["make", "-n", *args], check=False, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"  # -n: what it would run, nothing run
    elif program == "source":
        assert (REPO / args[0]).is_file(), command  # the environment `make` creates
    elif program.endswith("/python") and args[0].startswith("benchmarks/"):
        # each benchmark runs at a tiny size in tests/integration/test_benchmarks.py
        assert (REPO / args[0]).is_file() and args[0].removeprefix("benchmarks/") in \
            (REPO / "tests/integration/test_benchmarks.py").read_text(), command
    elif program == "snakemake":
        run_snakemake(command, project, scratch)
    elif program == "dvc":
        run_dvc(command, project, scratch)
    elif program == "siamcollapse":
        assert in_project(project, program, *args, check=False).returncode == 0, command
    else:
        pytest.fail(f"{command}: no check for '{program}' commands: add one to {Path(__file__).name}")


def run_snakemake(command: DocCommand, project: Path, scratch: Path) -> None:
    args = [DATASET_ROOT.sub(lambda m: m[1] + str(stand_in_image_folder(scratch / "dataset")), word)
            for word in command.words[1:]]
    if "--report" in args:  # a report of a config's DAG needs its run: it must carry the run's config
        report_config = config_args(command.words)
        runs = [c for c in all_commands(command) if c.words[0] == "snakemake" and "--report" not in c.words]
        assert any(config_args(run.words) == report_config for run in runs), \
            f"{command}: no command beside it runs that config: the report needs the same --configfile and --config"
        return
    proc = in_project(project, "snakemake", *args, "-n", check=False)
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-2000:]}"


def config_args(words: tuple[str, ...]) -> list[str]:
    """The --configfile and --config values of a Snakemake command line."""
    values, taking = [], False
    for word in words:
        if word.startswith("--"):
            taking = word in ("--configfile", "--config")
        elif taking:
            values.append(word)
    return values


def all_commands(command: DocCommand) -> list[DocCommand]:
    return doc_commands(REPO / command.source.partition(":")[0], REPO)


def run_dvc(command: DocCommand, project: Path, scratch: Path) -> None:
    args = list(command.words[1:])
    if tuple(args[:1]) in {key[1:] for key in RUN_BY}:
        node = RUN_BY[("dvc", args[0])]
        assert named_test_exists(node), f"{command}: the test that runs it, {node}, is gone"
        return
    if args[:2] == ["exp", "run"]:  # DVC's own -S code, on a copy of the file it edits
        from dvc.utils.hydra import apply_overrides

        for override in [args[i + 1] for i, word in enumerate(args) if word in ("-S", "--set-param")]:
            target, _, assignment = override.partition(":")
            copy = scratch / Path(target).name
            copy.write_text((REPO / target).read_text())
            apply_overrides(copy, [assignment])  # raises for a key the file does not have
        return
    if args[:2] == ["remote", "add"]:  # a remote in the scratch folder instead of the user's path
        args[-1] = str(scratch / "remote")
    proc = in_project(project, "dvc", *args, check=False)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-1000:]}{proc.stderr[-1000:]}"


@pytest.mark.parametrize("doc", [doc.relative_to(REPO).as_posix() for doc in DOCS if doc_commands(doc, REPO)])
def test_every_command_of_the_doc_works_as_written(doc, tmp_path):
    commands = doc_commands(REPO / doc, REPO)
    project = copy_project(tmp_path / "project")
    for command in commands:
        run_command(command, project, tmp_path)


def test_a_command_the_docs_get_wrong_fails_its_check(tmp_path):
    """The checks can fail: a DVC override of a key the file lacks, a report without its run's
    config, a Snakemake flag that does not exist."""
    project = copy_project(tmp_path / "project")
    wrong = [("dvc", "exp", "run", "-S", "configs/test.yaml:linear_probe.lr=0.2"),
             ("snakemake", "--cores", "1", "--no-such-flag"),
             ("snakemake", "--report", "r.html")]
    for words in wrong:
        with pytest.raises(Exception):  # noqa: B017 - an assertion or DVC's own error
            run_command(DocCommand("README.md:1", words), project, tmp_path)
