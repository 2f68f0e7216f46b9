"""The shell commands of the project's Markdown: every line of a ```bash block, continuation
lines joined and trailing comments dropped. A block preceded by ``<!-- not checked: WHY -->``
is left out (with its reason in the source, for a reader)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
NOT_CHECKED = re.compile(r"<!-- not checked: [^>]+ -->\s*\Z")


@dataclass(frozen=True)
class DocCommand:
    source: str  # file:line, for a failure message
    words: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.source}: {shlex.join(self.words)}"


def doc_commands(path: Path, root: Path) -> list[DocCommand]:
    """The commands of ``path``'s bash blocks that are not marked as not checked."""
    text = path.read_text()
    commands = []
    for block in FENCE.finditer(text):
        if NOT_CHECKED.search(text[:block.start()]):
            continue
        line_number = text[:block.start()].count("\n") + 2  # the block's first line
        pending, start = "", line_number
        for offset, line in enumerate(block.group(1).split("\n")):
            if not pending:
                start = line_number + offset
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            words = shlex.split(pending + line, comments=True)
            pending = ""
            if words:
                commands.append(DocCommand(f"{path.relative_to(root)}:{start}", tuple(words)))
    return commands
