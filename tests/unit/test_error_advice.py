"""Every command an error message suggests works as written: each one is followed, as the
message gives it, by the test named here; a message that suggests a new command fails this test
until it names the test that follows it (as docs commands do, tests/workflow/test_doc_commands.py)."""

from __future__ import annotations

import ast
import re

from siamcollapse.codedeps import PACKAGE_DIR

REPO = PACKAGE_DIR.parents[1]
# What a suggested command looks like in a message: a backquoted command line, or the wording
# of the messages that give one without quotes.
ADVICE = re.compile(r"`(?:siamcollapse|snakemake|dvc|make)\b[^`]*`|regenerate it: siamcollapse [\w-]+|"
                    r"with --config '|rerun the same command|rerun the workflow \(snakemake or dvc repro\)")
# (module, the advice as the pattern finds it, literal parts only) -> the tests that follow it
FOLLOWED_BY = {
    ("config_docs.py", "regenerate it: siamcollapse config-docs"):
        ["tests/unit/test_config_docs.py::test_check_fails_on_a_stale_file"],
    ("dvc_yaml.py", "regenerate it: siamcollapse dvc-yaml"):
        ["tests/workflow/test_dvc.py::test_check_stage_fails_when_the_config_outgrows_dvc_yaml"],
    ("plan.py", "`siamcollapse dvc-yaml --configfile {}`"):
        ["tests/workflow/test_dvc.py::test_a_stage_of_a_run_the_config_dropped_names_the_command_that_regenerates_its_pipeline"],
    ("plan.py", "with --config '"):
        ["tests/workflow/test_snakemake.py::test_the_missing_dataset_advice_works_as_written"],
    ("io.py", "rerun the workflow (snakemake or dvc repro)"):
        ["tests/workflow/test_shared_run.py::test_a_broken_or_missing_file_is_regenerated_on_the_next_run",
         "tests/workflow/test_shared_run.py::test_dvc_reruns_only_invalidated_stages_of_a_snakemake_run_and_snakemake_agrees"],
    ("loop.py", "rerun the same command"):
        ["tests/integration/test_preemption.py::test_sigterm_saves_the_step_it_reached_and_a_rerun_continues_there"],
}


def _is_message(node: ast.stmt) -> bool:
    """A statement that shows the user a message: a raise, print(...), warn(...), super().__init__(...)."""
    if isinstance(node, ast.Raise):
        return True
    call = node.value if isinstance(node, ast.Expr) else None
    if not isinstance(call, ast.Call):
        return False
    func = call.func
    return getattr(func, "id", None) == "print" or getattr(func, "attr", None) in ("warn", "__init__")


def _text(node: ast.AST) -> str:
    """The message's literal text, each interpolated value as {}."""
    parts = []
    for child in ast.walk(node):
        if isinstance(child, ast.FormattedValue):
            parts.append("{}")
        elif isinstance(child, ast.Constant) and isinstance(child.value, str):
            parts.append(child.value)
    return "".join(parts)


def suggested_commands(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt) and _is_message(node):
            found.update(match.group(0) for match in ADVICE.finditer(_text(node)))
    return found


def test_every_suggested_command_is_followed_by_a_test():
    found = {(path.name, advice) for path in sorted(PACKAGE_DIR.rglob("*.py"))
             for advice in suggested_commands(path.read_text())}
    assert found == set(FOLLOWED_BY), "a message suggests a command that no test follows (or an entry is stale)"
    for tests in FOLLOWED_BY.values():
        for test in tests:
            file, name = test.split("::")
            assert f"def {name}(" in (REPO / file).read_text(), test


def test_a_new_message_with_a_command_is_found():
    source = 'raise UserInputError(f"{path} is stale: run `snakemake --touch {path}`")\nprint("no advice here")\n'
    assert suggested_commands(source) == {"`snakemake --touch {}`"}
