"""Small parsers of the container files, written from the Dockerfile reference and Apptainer's
definition-file format, for tests/unit/test_containers.py (no container engine runs on the test
machines, so the files are parsed and checked)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

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
            global_args[key] = substitute(value, global_args)  # a default may name an earlier ARG
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


def labels_of(body: str) -> dict[str, str]:
    result = {}
    for line in body.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            result[key] = value.strip()
    return result
