"""`siamcollapse dvc-yaml`: the DVC pipeline of a config, generated from the Snakemake workflow.

The Snakefile is the one description of the DAG. This module builds Snakemake's DAG for a
config (every job, as if nothing existed yet) and writes one DVC stage per job: the job's shell
command; its inputs and code files as deps; the config keys it reads, as far as the config
file spells them out, as params; its outputs as outs. Outputs a rule names ``metrics`` become
DVC metrics; the spectra, the training logs (over epochs) and the figures, DVC plots.

The first stage, ``check_pipeline``, reruns whenever the config, the workflow or the code
changes and fails if the file no longer matches them, so `dvc repro` never runs a stale
pipeline quietly (a new run, or a key newly spelled out in the config, changes the pipeline).
"""

from __future__ import annotations

import argparse
import contextlib
import io as text_io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .codedeps import PACKAGE_DIR, stage_code
from .config import has_dotted, load_experiment, load_yaml
from .errors import UserInputError
from .io import write_text
from .layout import CODE_STAMP_SUFFIX
from .plan import output_tree

CHECK_STAGE = "check_pipeline"
DEFAULT_CONFIG = Path("config.yaml")
SPECTRUM_CURVES = {
    "normalized_spectrum": ("log10_normalized_singular_value", "log10 (s_k / s_1)",
                            "Normalised singular values of train features (log10 s_k / s_1)"),
    "cumulative_explained_variance": ("cumulative_explained_variance", "cumulative explained variance",
                                      "Cumulative explained variance; its mean is the collapse AUC"),
}
# Training curves from each run's train_log.csv (columns of training.loop.LOG_COLUMNS), over epochs;
# the collapse metrics only where the run tracked them.
TRAINING_CURVES = {
    "training_loss": ("loss", "loss", "Pretraining loss per epoch"),
    "training_lr": ("lr", "learning rate", "Learning rate at each epoch's end"),
    "training_z_std": ("z_std", "std of the L2-normalised projections",
                       "Projection std per epoch (about 1/sqrt(d) when healthy, 0 when collapsed)"),
    "training_auc": ("auc", "collapse AUC", "Collapse AUC of the tracked training images per epoch"),
    "training_rankme": ("rankme", "RankMe", "RankMe of the tracked training images per epoch"),
}
TRAINING_RULES = ("pretrain", "distill")  # the rules that train epochs (the random-init floor trains none)


@dataclass(frozen=True)
class WorkflowJob:
    """One job of the Snakemake DAG, with paths relative to the working directory."""

    rule: str
    wildcards: dict[str, str]
    cmd: str
    inputs: list[str]
    code: list[str]
    outputs: dict[str, list[str]]  # output name ('' for unnamed) -> paths
    config_keys: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A DVC stage name (letters, digits, '_' and '-' only), unique per job."""
        return re.sub(r"[^\w-]", "_", "-".join([self.rule, *self.wildcards.values()]))

    @property
    def all_outputs(self) -> list[str]:
        return [path for paths in self.outputs.values() for path in paths]


def relative(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    absolute = Path(path).absolute()
    return os.path.relpath(absolute) if absolute.is_relative_to(Path.cwd()) else str(absolute)


def _named(namedlist: Any) -> dict[str, list[str]]:
    named: dict[str, list[str]] = {}
    for name, value in namedlist._allitems():
        values = value if isinstance(value, list) else [value]
        named.setdefault(name or "", []).extend(relative(v) for v in values)
    return named


def _job_record(job: Any) -> WorkflowJob:
    inputs = _named(job.input)
    # Snakemake's code input is the digest of the stage's files; DVC hashes the files themselves
    code = [relative(path) for stamp in inputs.pop("code", [])
            for path in stage_code(Path(stamp).name.removesuffix(CODE_STAMP_SUFFIX))]
    settings = getattr(job.params, "settings", None) or {}
    return WorkflowJob(
        rule=job.rule.name,
        wildcards=dict(job.wildcards.items()),
        cmd=" ".join(job.shellcmd.split()),
        inputs=[path for paths in inputs.values() for path in paths],
        code=code,
        outputs=_named(job.output),
        config_keys=list(settings),
    )


UNCAPPED_CORES = 1024


@contextlib.contextmanager
def _snakemake_workflow(configfile: Path, snakefile: Path):
    from snakemake.api import SnakemakeApi
    from snakemake.exceptions import WorkflowError
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, Quietness, ResourceSettings

    quiet = OutputSettings(quiet={Quietness.ALL})
    # The Snakefile reports a bad config by exiting; keep its message, drop Snakemake's noise.
    with contextlib.redirect_stderr(text_io.StringIO()) as noise, SnakemakeApi(quiet) as api:
        try:
            # Snakemake gives a job min(declared threads, cores); DVC's command must carry the
            # declared threads whatever machine generates it (the thread count changes the last
            # bits of a result): cores that cap nothing.
            workflow_api = api.workflow(resource_settings=ResourceSettings(cores=UNCAPPED_CORES),
                                        config_settings=ConfigSettings(configfiles=[configfile]),
                                        snakefile=snakefile, workdir=Path.cwd())
            workflow_api.dag(DAGSettings(forceall=True))
            yield workflow_api._workflow
        except SystemExit as exc:
            raise UserInputError(str(exc.code)) from None
        except WorkflowError as exc:
            raise UserInputError(f"Snakemake could not build the DAG of {configfile}: {exc}\n"
                                 f"{noise.getvalue()[-2000:]}") from None


def workflow_jobs(configfile: Path, snakefile: Path = Path("Snakefile")) -> tuple[list[WorkflowJob], list[str]]:
    """Every job Snakemake would run for ``configfile`` (in rule order), and the workflow's files."""
    with _snakemake_workflow(configfile, snakefile) as workflow:
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        rule_order = {rule.name: i for i, rule in enumerate(workflow.rules)}
        jobs = [_job_record(job) for job in workflow.dag.jobs if job.rule.shellcmd]
        sources = [relative(source.get_path_or_uri(secret_free=True)) for source in workflow.included]
    jobs.sort(key=lambda j: (rule_order[j.rule], list(j.wildcards.values())))
    return jobs, sources


def _stage(job: WorkflowJob, configfile: str, config: dict[str, Any], wdir: str) -> dict[str, Any]:
    stage: dict[str, Any] = {"cmd": job.cmd}
    if wdir != ".":
        stage["wdir"] = wdir
    stage["deps"] = [*job.inputs, *job.code]
    params = [key for key in job.config_keys if has_dotted(config, key)]
    if params:
        stage["params"] = [{configfile: params}]
    stage["outs"] = job.all_outputs
    return stage


def _check_stage(configfile: str, out: Path, sources: list[str], wdir: str) -> dict[str, Any]:
    stage: dict[str, Any] = {"cmd": f"siamcollapse dvc-yaml --configfile {configfile} --out {relative(out)} --check"}
    if wdir != ".":
        stage["wdir"] = wdir
    stage["deps"] = [configfile, *sources, relative(PACKAGE_DIR)]
    return stage


def _by_run(path: str) -> tuple[str, str]:
    """Metrics files sorted by run directory, so `dvc metrics show` lists each run's rows together."""
    return str(Path(path).parent), path


def _plots(jobs: list[WorkflowJob], at: Any) -> list[Any]:
    spectra = [at(path) for job in jobs for path in job.outputs.get("spectrum", [])]
    curves = [
        {plot_id: {"title": title, "template": "linear", "x": "index", "x_label": "singular value index k",
                   "y_label": y_label, "y": {path: column for path in spectra}}}
        for plot_id, (column, y_label, title) in SPECTRUM_CURVES.items()
    ] if spectra else []
    logs = [at(path) for job in jobs if job.rule in TRAINING_RULES for path in job.outputs.get("train_log", [])]
    training = [
        {plot_id: {"title": title, "template": "linear", "x": "epoch", "x_label": "epoch", "y_label": y_label,
                   "y": {path: column for path in logs}}}
        for plot_id, (column, y_label, title) in TRAINING_CURVES.items()
    ] if logs else []
    figures = [at(path) for job in jobs for path in job.all_outputs if path.endswith(".png")]
    return [*curves, *training, *figures]


def tracker_metrics(config: dict[str, Any], runs: list[str]) -> list[Path]:
    """DVCLive's metrics file of each of ``runs``, when the config logs to DVCLive: not outputs
    (tracking never decides what reruns) but metrics, so that `dvc exp show` lists them."""
    if "dvclive" not in config["tracking"]["log_with"]:
        return []
    tracking = output_tree(config).tracking
    return [tracking.dvclive_metrics(run) for run in runs]


def render_pipeline(configfile: Path, out: Path, snakefile: Path = Path("Snakefile")) -> tuple[str, int]:
    """The text of ``out`` (dvc.yaml) for ``configfile``, and how many stages it has."""
    config = load_yaml(configfile)
    jobs, sources = workflow_jobs(configfile, snakefile)
    wdir = os.path.relpath(Path.cwd(), out.absolute().parent)
    params_file = os.path.relpath(configfile.absolute(), Path.cwd())
    stages = {CHECK_STAGE: _check_stage(params_file, out, sources, wdir)}
    stages.update((job.name, _stage(job, params_file, config, wdir)) for job in jobs)
    pipeline: dict[str, Any] = {"stages": stages}

    def at(path: str) -> str:  # top-level metrics and plots are relative to dvc.yaml, not to wdir
        return os.path.normpath(os.path.join(wdir, path))

    metrics = sorted((at(path) for job in jobs for path in job.outputs.get("metrics", [])), key=_by_run)
    trained = [job.wildcards["run"] for job in jobs if job.rule in TRAINING_RULES]
    metrics += [at(relative(path)) for path in tracker_metrics(load_experiment([configfile]), trained)]
    if metrics:
        pipeline["metrics"] = metrics
    plots = _plots(jobs, at)
    if plots:
        pipeline["plots"] = plots
    header = (f"# Generated by `siamcollapse dvc-yaml --configfile {params_file}` from the Snakemake workflow:\n"
              "# the same commands and outputs as `snakemake`. Do not edit; regenerate after changing the\n"
              "# config's runs or paths or the workflow (the check_pipeline stage fails until then).\n")
    body = yaml.safe_dump(pipeline, sort_keys=False, width=10_000, default_flow_style=False)
    return header + body, len(stages)


def default_output(configfile: Path) -> Path:
    """dvc.yaml for config.yaml; workflow/dvc/<name>/dvc.yaml for any other config."""
    if configfile.absolute() == DEFAULT_CONFIG.absolute():
        return Path("dvc.yaml")
    return Path("workflow") / "dvc" / configfile.stem / "dvc.yaml"



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configfile", type=Path, default=DEFAULT_CONFIG, help="experiment config (default: %(default)s)")
    parser.add_argument("--snakefile", type=Path, default=Path("Snakefile"))
    parser.add_argument("--out", type=Path, default=None,
                        help="dvc.yaml to write (default: dvc.yaml for config.yaml, else workflow/dvc/<name>/dvc.yaml)")
    parser.add_argument("--check", action="store_true", help="only check the file is current (exit 1 if not)")


def main(args: argparse.Namespace) -> int:
    out = args.out or default_output(args.configfile)
    try:
        text, count = render_pipeline(args.configfile, out, args.snakefile)
    except UserInputError as exc:
        print(f"siamcollapse dvc-yaml: error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if not out.is_file() or out.read_text() != text:
            print(f"siamcollapse dvc-yaml: {out} is out of date with {args.configfile} and the workflow; "
                  f"regenerate it: siamcollapse dvc-yaml --configfile {args.configfile} --out {out}", file=sys.stderr)
            return 1
        print(f"{out} is up to date ({count} stages)")
        return 0
    write_text(out, text)
    print(f"wrote {out}: {count} stages for {args.configfile}")
    return 0
