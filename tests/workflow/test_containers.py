"""With `--software-deployment-method apptainer`, Snakemake runs every rule's command inside the project's image.

No container engine runs on the test machines, and Snakemake refuses the flag, even for a dry-run, when it
finds no `apptainer` (or `singularity`) on PATH; a dry-run with one plans the same jobs and prints their
commands unwrapped. So these tests put a stand-in `apptainer` first on PATH that answers `--version`
(Snakemake's check) and otherwise only records the command line it was given and fails: it runs nothing and
no job succeeds. Snakemake itself plans the jobs, composes each command and executes it; the stand-in shows
exactly what that was, `apptainer exec --home <workdir> <apptainer-args> <image> bash -c '<the job's
command>'`, for a job of every rule of configs/test.yaml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest

from siamcollapse.layout import CODE_STAMP_DIR

from ..helpers.planned_jobs import PlannedJob, parents, planned_jobs
from .conftest import REPO, snakemake

CONFIG = REPO / "configs" / "test.yaml"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = REPO / "containers" / f"siamcollapse-{VERSION}.sif"
APPTAINER = ["--software-deployment-method", "apptainer", "--apptainer-args=--nv"]  # "=": the value starts with -

STAND_IN = f"""#!{sys.executable}
# Stand-in for the apptainer CLI in tests: reports a version, records any other call, runs nothing, fails.
import json, os, sys
if sys.argv[1:] == ["--version"]:
    print("apptainer version 1.4.0")
    sys.exit(0)
record = os.path.join(os.environ["APPTAINER_STAND_IN_RECORD"], f"{{os.getpid()}}.json")
with open(record, "w") as out:
    json.dump({{"cwd": os.getcwd(), "argv": sys.argv[1:]}}, out)
sys.exit("apptainer stand-in: no container engine on this machine")
"""


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the stand-in on PATH; returns the directory its calls are recorded in (one JSON file per call)."""
    bin_dir, record = tmp_path / "engine-bin", tmp_path / "engine-calls"
    bin_dir.mkdir()
    record.mkdir()
    script = bin_dir / "apptainer"
    script.write_text(STAND_IN)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), os.environ["PATH"]]))
    monkeypatch.setenv("APPTAINER_STAND_IN_RECORD", str(record))
    return record


def calls(record: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(record.glob("*.json"))]


def independent_groups(jobs: list[PlannedJob]) -> list[list[PlannedJob]]:
    """A job of every rule, split into few groups (greedily) in which no job is an ancestor of another, so that
    each group's jobs can be forced together and every one of them is started."""
    direct = parents(jobs)

    @cache
    def ancestors(job: PlannedJob) -> frozenset[PlannedJob]:
        return frozenset(direct[job]).union(*map(ancestors, direct[job]))

    by_rule: dict[str, list[PlannedJob]] = {}
    for job in jobs:
        by_rule.setdefault(job.rule, []).append(job)
    groups, left = [], sorted(by_rule, key=lambda rule: (len(by_rule[rule]), rule))  # the least choice first
    while left:
        group: list[PlannedJob] = []
        for rule in left:
            free = [j for j in by_rule[rule] if not any(j in ancestors(g) or g in ancestors(j) for g in group)]
            if free:
                group.append(free[0])
        groups.append(group)
        left = [rule for rule in left if rule not in {job.rule for job in group}]
    return groups


def stage_outputs(workdir: Path, jobs: list[PlannedJob], plan: Path) -> None:
    """An empty placeholder for every output of the DAG, all with one timestamp newer than the code (the stages'
    code digests, as the dry-run in ``plan`` wrote them): every job is then up to date, and a job forced with
    --forcerun runs alone with its inputs present."""
    shutil.copytree(plan / CODE_STAMP_DIR, workdir / CODE_STAMP_DIR)
    now = time.time()
    for job in jobs:
        for output in job.outputs:
            path = workdir / output
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, (now, now))


def test_without_an_engine_even_a_dry_run_is_refused(workdir):
    if any(shutil.which(name) for name in ("apptainer", "singularity")):
        pytest.skip("a container engine is installed here")
    proc = snakemake(workdir, "--configfile", CONFIG, "-n", *APPTAINER, check=False, timeout=120)
    assert proc.returncode != 0
    assert "The apptainer or singularity command has to be available" in proc.stdout + proc.stderr


def test_every_rule_runs_inside_the_image(tmp_path, engine):
    # The dry-run plans every job and executes nothing, not even in the image.
    (tmp_path / "plan").mkdir()
    dry = snakemake(tmp_path / "plan", "--configfile", CONFIG, "-n", "-p", *APPTAINER, timeout=120)
    assert calls(engine) == []  # `apptainer --version` only, which the stand-in does not record
    jobs = [job for job in planned_jobs(dry.stdout) if job.command != "None"]  # `all` has no command
    counted = re.findall(r"(?m)^(\w+) +(\d+)$", dry.stdout[dry.stdout.index("Job stats:"):].split("\n\n")[0])
    assert {rule for rule, _ in counted} - {"all", "total"} == {job.rule for job in jobs}
    assert sum(int(n) for rule, n in counted if rule not in ("all", "total")) == len(jobs)

    groups = independent_groups(jobs)

    def force(index: int):
        workdir = tmp_path / f"group{index}"
        workdir.mkdir()
        stage_outputs(workdir, jobs, tmp_path / "plan")
        targets = [job.outputs[0] for job in groups[index]]
        return snakemake(workdir, *targets, "--configfile", CONFIG, "--forcerun", *targets, "--cores", "1",
                         "--keep-going", *APPTAINER, check=False, timeout=300)

    with ThreadPoolExecutor(max_workers=max(1, min(len(groups), os.cpu_count() or 1))) as pool:
        results = list(pool.map(force, range(len(groups))))

    recorded: dict[str, list[list[str]]] = {}
    for call in calls(engine):
        recorded.setdefault(Path(call["cwd"]).name, []).append(call["argv"])
    covered = set()
    for index, (group, proc) in enumerate(zip(groups, results)):
        workdir = tmp_path / f"group{index}"
        argvs = recorded.get(workdir.name, [])
        # Each forced job, and nothing else, was started, through the engine, and failed because the engine did.
        assert proc.returncode != 0
        assert len(argvs) == len(group), (group, argvs, proc.stdout[-3000:], proc.stderr[-3000:])
        for job in group:
            assert f"Error in rule {job.rule}" in proc.stdout + proc.stderr
            command = " ".join(job.command.split())
            assert command.startswith("siamcollapse ")
            [argv] = [a for a in argvs if " ".join(a[-1].split()).endswith(command)]
            # apptainer exec --home <workdir> [--nv ...] [--bind ...] <image> bash -c '<shell prefix>; <command>'
            assert argv[:3] == ["exec", "--home", str(workdir)], argv
            assert IMAGE.as_posix() in argv, argv
            at = argv.index(IMAGE.as_posix())
            assert "--nv" in argv[3:at], argv
            assert argv[at + 1:at + 3] == ["bash", "-c"] and len(argv) == at + 4, argv
            covered.add(job.rule)
    assert covered == {job.rule for job in jobs}
