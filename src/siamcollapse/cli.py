"""`siamcollapse <stage>`: one command per pipeline stage, called by Snakemake and DVC alike.

Every stage reads its settings from the experiment config (``--config FILE``, plus ``--set
JSON`` for command-line overrides) and takes only its input and output paths as flags, so
both engines run the same command and a config edit reaches the stage as it is. Inputs are
checked before any work (a clear error naming the path or key), outputs written atomically,
and ``--log FILE`` keeps a copy of everything the stage prints.

``siamcollapse dvc-yaml`` writes the DVC pipeline of a config from the Snakemake workflow.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from .codedeps import stage_modules
from .config import json_object
from .errors import TrainingDiverged, TrainingInterrupted, UserInputError

# Commands that are not pipeline stages: name -> (module, one-line help).
TOOLS = {
    "dvc-yaml": ("dvc_yaml", "Write (or --check) the DVC pipeline of a config, generated from the Snakemake workflow."),
    "config-docs": ("config_docs", "Write (or --check) docs/config.md, the reference of every config key, from the schema."),
    "validate": ("preflight", "Check a config as far as it can be without running anything (keys, YAML, dataset, sizes)."),
    "estimate-compute": ("estimate_compute", "Estimate a config's pretraining compute from a finished run's measured costs."),
    "launch": ("launch", "Run a stage on several processes, GPUs or nodes (accelerate launch; srun across nodes)."),
}
TOOL_HELP = {name: text for name, (_, text) in TOOLS.items()}


def _stage_help() -> dict[str, str]:
    """Command -> one-line help of every stage module: its docstring's first line, read with
    ``ast`` so that `siamcollapse --help` imports no stage (and a new stage needs no entry here)."""
    return {path.stem.replace("_", "-"): ast.get_docstring(ast.parse(path.read_text())).splitlines()[0]
            for path in stage_modules()}


STAGE_HELP = _stage_help()


def _stage_module(name: str) -> ModuleType:
    return importlib.import_module(f"siamcollapse.stages.{name.replace('-', '_')}")


def _add_common_options(common: argparse.ArgumentParser, reads_config: bool) -> None:
    if reads_config:
        common.add_argument("--config", dest="configfiles", type=Path, action="append", required=True,
                            metavar="FILE", help="experiment config (repeat to merge several, in order)")
        common.add_argument("--set", dest="overrides", type=json_object, default=None, metavar="JSON",
                            help="config overrides on top of the files, e.g. '{\"linear_probe\": {\"lr\": 0.2}}'")
    common.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: the config's)")
    common.add_argument("--log", type=Path, default=None, help="also write everything printed to this file")


def _build_parser(command: str | None) -> argparse.ArgumentParser:
    """The CLI; only ``command``'s module is imported (the others' help comes from STAGE_HELP)."""
    parser = argparse.ArgumentParser(prog="siamcollapse", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in {**STAGE_HELP, **TOOL_HELP}.items():
        p = sub.add_parser(name, help=text, description=text)
        if name != command:
            continue
        if name in TOOLS:
            tool = importlib.import_module(f"siamcollapse.{TOOLS[name][0]}")
            tool.add_arguments(p)
            p.set_defaults(stage=None, tool=tool.main)
            continue
        module = _stage_module(name)
        _add_common_options(p, reads_config=module.RESOURCES is not None)
        module.add_arguments(p)
        p.set_defaults(stage=module)
    return parser


class _Tee:
    """A text stream that writes to the terminal stream and to a log file."""

    def __init__(self, stream: TextIO, log: TextIO):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        self.log.flush()
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def _logging_to(path: Path | None) -> Iterator[None]:
    # Of several processes (siamcollapse launch) only the first writes the log; the others' output
    # still reaches the job's stderr through the launcher.
    if path is None or int(os.environ.get("RANK", "0")) > 0:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log:
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(sys.stdout, log), _Tee(sys.stderr, log)
        try:
            yield
        except BaseException:
            log.write(traceback.format_exc())  # the terminal gets it from the interpreter
            raise
        finally:
            sys.stdout, sys.stderr = saved


def _run_stage(args: argparse.Namespace) -> None:
    from . import plan
    from .config import load_experiment, only_keys

    module = args.stage
    config = load_experiment(args.configfiles, args.overrides) if module.RESOURCES is not None else None
    stage = module.__name__.rsplit(".", 1)[-1]
    if config is not None and not getattr(module, "PLANS_RUNS", False):
        config = only_keys(config, plan.STAGE_CONFIG_KEYS[stage], stage)  # what its params record, nothing more
    threads = args.threads or (config["resources"][module.RESOURCES]["threads"] if config else None)
    if threads:
        threads = max(1, threads // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # the processes share the job's
        # Only where the stage's imports loaded torch: importing it here would cost a torch-free
        # stage (kNN, tables, figures, data generation) ten times its own start-up.
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
    module.run(args, config)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in STAGE_HELP or a in TOOL_HELP), None)
    args = _build_parser(command).parse_args(argv)
    if args.stage is None:
        return args.tool(args)
    with _logging_to(args.log):
        try:
            _run_stage(args)
        except UserInputError as exc:
            print(f"siamcollapse {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except TrainingInterrupted as exc:
            print(f"siamcollapse {args.command}: {exc}", file=sys.stderr, flush=True)
            return exc.exit_code
        except TrainingDiverged as exc:
            print(f"siamcollapse {args.command}: error: {exc}", file=sys.stderr, flush=True)
            return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
