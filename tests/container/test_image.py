"""The runtime image built by `make test-container` (containers/Dockerfile on a local Debian 12
base), run for real with buildah (chroot isolation): its user, its read-only install, and every
stage command of configs/test.yaml run inside it in dependency order, with the project
directory mounted, give the results a host run of the same workflow gives."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import tomllib
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import pytest
import torch

from siamcollapse.layout import RunDir

from ..helpers.container_files import parse_definition
from ..helpers.planned_jobs import PlannedJob, parents, planned_jobs
from ..workflow.conftest import REPO, copy_project, in_project

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/siamcollapse/siamcollapse:{VERSION}"  # buildah's name for the Makefile's tag
CONFIG = "configs/test.yaml"
RESULTS = Path("results") / "test"
MOUNT = "/work"  # the image's working directory, where a project is mounted
USER_ID = 10001  # the Dockerfile's USER
# What Snakemake sets for a job of N threads (snakemake.shell): the linear-algebra libraries'
# thread counts, which decide their summation order and so a spectrum metric's last digits.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def blas_kernel_settings() -> dict[str, str]:
    """The host's choice of OpenBLAS kernels (OPENBLAS_CORETYPE and the like), which a container
    does not inherit: with other kernels, least-squares fits such as alpha-ReQ differ in their
    last digits (seen here: 2.5163643734744734 with OPENBLAS_CORETYPE=Haswell, ...725 without)."""
    return {name: value for name, value in os.environ.items() if name.startswith("OPENBLAS_")}


class Container:
    """A working container of the image; ``run`` executes a command in it, as the image's user
    and in its working directory, with ``project`` mounted there."""

    def __init__(self, project: Path | None = None):
        self.project = project
        self.name = f"siamcollapse-test-{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> Self:
        subprocess.run(["buildah", "from", "--pull-never", "--name", self.name, IMAGE], check=True,
                       capture_output=True, text=True, timeout=300)
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["buildah", "rm", self.name], check=False, capture_output=True, timeout=300)

    def run(self, *command: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        mount = ["--volume", f"{self.project}:{MOUNT}"] if self.project else []
        variables = [f"--env={name}={value}" for name, value in (env or {}).items()]
        return subprocess.run(["buildah", "run", "--isolation", "chroot", *mount, *variables, self.name, "--", *command],
                              check=False, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", autouse=True)
def image() -> str:
    if shutil.which("buildah") is None:
        pytest.fail("buildah is not installed (apt-get install buildah); `make test-container` builds the image with it")
    found = subprocess.run(["buildah", "inspect", "--type", "image", IMAGE], check=False, capture_output=True,
                           timeout=120)
    if found.returncode != 0:
        pytest.fail(f"no image {IMAGE}: `make test-container` builds it before these tests")
    return IMAGE


def test_the_default_user_is_not_root_and_cannot_change_the_install():
    with Container() as box:
        ids = box.run("id", "-u")
        assert ids.returncode == 0 and int(ids.stdout) == USER_ID
        where = box.run("python", "-c", "import siamcollapse, torch; print(siamcollapse.__file__, torch.version.cuda)")
        package, cuda = where.stdout.split()
        assert package.startswith("/opt/venv/") and cuda == "13.0", where
        for attempt in (["touch", "/opt/venv/bin/siamcollapse"], ["mkdir", "/opt/venv/lib/extra"],
                        ["python", "-m", "pip", "uninstall", "--yes", "six"]):
            denied = box.run(*attempt)
            assert denied.returncode != 0, attempt
        assert box.run("siamcollapse", "--help").returncode == 0


def test_the_apptainer_definitions_scripts_run_in_the_image():
    # Apptainer itself is not on this machine; what its image adds to this one is these scripts,
    # run here in the image, as its user, as Apptainer would (sh, the environment sourced first).
    _, sections, _ = parse_definition((REPO / "containers" / "siamcollapse.def").read_text())
    with Container() as box:
        checked = box.run("sh", "-c", "set -e\n" + sections["environment"] + "\n" + sections["test"])
        assert checked.returncode == 0, checked.stderr[-2000:]
        run = box.run("sh", "-c", sections["environment"] + "\n" + sections["runscript"], "runscript", "--help")
        assert run.returncode == 0 and run.stdout.startswith("usage: siamcollapse"), run
        where = box.run("sh", "-c", sections["environment"] + '\nprintf %s "$MPLCONFIGDIR"')
        assert where.stdout == f"/tmp/matplotlib-{USER_ID}", where


def in_dependency_order(jobs: list[PlannedJob]) -> list[PlannedJob]:
    """The jobs, each after every job that writes one of its inputs."""
    direct, ordered = parents(jobs), []
    while len(ordered) < len(jobs):
        ready = [job for job in jobs if job not in ordered and direct[job] <= set(ordered)]
        assert ready, "the dry-run's jobs depend on each other in a cycle"
        ordered += ready
    return ordered


def outcomes(project: Path) -> dict[str, object]:
    """What the workflow computed: the run table (without the columns that time the runs) and
    every checkpoint's weights fingerprint."""
    with open(project / RESULTS / "tables" / "runs.csv", newline="") as table:
        rows = [{k: v for k, v in row.items() if not k.endswith("_s")} for row in csv.DictReader(table)]
    runs = [RunDir(path) for path in sorted((project / RESULTS / "runs").iterdir())]
    weights = {run.path.name: torch.load(run.checkpoint, map_location="cpu", weights_only=False)["fingerprint"]
               for run in runs if run.checkpoint.exists()}
    return {"runs.csv": rows, "weights": weights}


def test_every_stage_command_of_the_test_config_runs_inside_the_image_and_gives_the_host_results(tmp_path):
    if os.geteuid() != 0:
        pytest.fail(f"this test needs root: it hands the mounted project to the image's user (uid {USER_ID})")
    host, boxed = copy_project(tmp_path / "host"), copy_project(tmp_path / "container")
    dry = in_project(boxed, "snakemake", "-n", "-p", "--forceall", "--configfile", CONFIG, timeout=300)
    jobs = [job for job in planned_jobs(dry.stdout) if job.command != "None"]  # `all` has no command
    assert {job.rule for job in jobs} >= {"prepare_data", "pretrain", "distill", "linear_probe", "knn",
                                        "collect_tables", "plot_figures"}
    shutil.rmtree(boxed / ".snakemake")  # the dry-run's bookkeeping: the container run needs none of it
    for path in [boxed, *boxed.rglob("*")]:  # the image's user writes the outputs into the mounted project
        os.chown(path, USER_ID, USER_ID, follow_symlinks=False)

    with ThreadPoolExecutor(max_workers=1) as pool:  # the host's run beside the container's
        host_run = pool.submit(in_project, host, "snakemake", "--cores", "1", "--configfile", CONFIG, timeout=1800)
        with Container(boxed) as box:
            for job in in_dependency_order(jobs):  # as Snakemake runs a rule: `bash -c '<command>'`
                env = {**blas_kernel_settings(), **dict.fromkeys(THREAD_VARIABLES, str(job.threads))}
                proc = box.run("bash", "-c", job.command, env=env, timeout=900)
                assert proc.returncode == 0, (job.rule, job.command, proc.stdout[-2000:], proc.stderr[-2000:])
        host_run.result()

    for job in jobs:
        for output in job.outputs:
            assert (boxed / output).exists(), (job.rule, output)
            assert (boxed / output).stat().st_uid == USER_ID, output
    assert outcomes(boxed) == outcomes(host)
