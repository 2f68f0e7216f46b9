"""What a planned experiment's pretraining would cost, scaled from a finished run's measured costs.

A finished Snakemake run's ``costs.csv`` holds the wall and CPU seconds of every training job
(rules ``pretrain``, ``pretrain_segment``, ``distill``). With the config that run used, each
measured run's image-views (steps x batch x 2 views) and pixels per image are known, so its
seconds per pixel-view are too. A target run's estimate is its planned pixel-views times the
pooled rate of the measured runs of its architecture (a student's: of the same student and
teacher architectures); an architecture with no measured run is "not measured", never guessed.
"""

from __future__ import annotations

import csv
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import plan
from ..config import steps_per_epoch
from ..errors import UserInputError
from ..layout import SEGMENT_JOB
from ..models.naming import model_name
from ..names import DISTILL
from ..preflight import training_set_size
from .costs import COST_COLUMNS

VIEWS_PER_STEP = 2  # every method augments two views of each image per step
# The benchmark families (rules) of training jobs.
SEGMENT_FAMILY = "pretrain_segment"
TRAINING_FAMILIES = ("pretrain", SEGMENT_FAMILY, "distill")
NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class TrainingJob:
    """One training job of the plan: its benchmark's family and job name, and what it trains."""

    family: str
    job: str
    run: plan.Run
    epochs: int


@dataclass(frozen=True)
class Rate:
    """Measured seconds per pixel-view, pooled over ``runs``; ``basis`` says how they match."""

    wall: float
    cpu: float
    runs: tuple[str, ...]
    basis: str


def _start_epoch(runs: dict[str, plan.Run], name: str, until_epoch: int | None = None) -> int:
    start = plan.initial_state(runs, name, until_epoch)
    return start[1] if start else 0


def training_jobs(runs: dict[str, plan.Run]) -> Iterator[TrainingJob]:
    """Every training job the workflow runs for ``runs``: segments of runs that hybrids continue,
    then each trained run's own job (a hybrid's trains only the epochs after its switch)."""
    for run in runs.values():
        if run.is_floor:
            continue
        for epoch in plan.snapshot_epochs(runs, run.name):
            job = SEGMENT_JOB.format(run=run.name, epoch=epoch)
            yield TrainingJob(SEGMENT_FAMILY, job, run, epoch - _start_epoch(runs, run.name, epoch))
        family = "distill" if run.teacher is not None else "pretrain"
        yield TrainingJob(family, run.name, run, run.pretrain["epochs"] - _start_epoch(runs, run.name))


def known_steps_per_epoch(pretrain: dict[str, Any], num_train: int | None, where: str) -> int:
    """``config.steps_per_epoch``, or an error naming ``where`` when it needs an unknown training-set size."""
    if num_train is None and not pretrain.get("steps_per_epoch"):
        raise UserInputError(f"{where}: key 'pretrain.steps_per_epoch' is null (the training set / batch_size) and "
                             "the config alone does not say how many training images there are: pass --train-images N "
                             "for the target config, --measured-train-images N for the measured one (ImageNet-1k: 1281167)")
    return steps_per_epoch(pretrain, num_train or 0)


def pixel_views(job: TrainingJob, image_size: int, num_train: int | None, where: str) -> tuple[int, int]:
    """(steps, pixel-views) of ``job``: steps x batch x views x image_size²."""
    steps = job.epochs * known_steps_per_epoch(job.run.pretrain, num_train, where)
    return steps, steps * job.run.pretrain["batch_size"] * VIEWS_PER_STEP * image_size ** 2


def read_costs(path: Path) -> dict[tuple[str, str], dict[str, float]]:
    """``(family, job) -> {wall_s, cpu_s}`` of the training jobs of a costs.csv."""
    if not path.is_file():
        raise UserInputError(f"--costs {path}: no such file (collect_tables writes it into the tables folder)")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COST_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UserInputError(f"--costs {path}: not a cost table, it lacks the columns {', '.join(missing)}")
        rows = {(r["family"], r["job"]): {"wall_s": float(r["wall_s"]), "cpu_s": float(r["cpu_s"])}
                for r in reader if r["family"] in TRAINING_FAMILIES}
    if not any(family == "pretrain" for family, _ in rows):
        raise UserInputError(f"--costs {path}: no pretrain rows (Snakemake's benchmark of each pretraining job); "
                             "DVC records none: measure with a Snakemake run")
    return rows


def match_key(run: plan.Run) -> tuple[str, ...]:
    """What a target run needs a measured run to share: the architecture (a student's, and its teacher's)."""
    return (run.model["arch"],) if run.teacher is None else (run.model["arch"], run.teacher.model["arch"])


@dataclass(frozen=True)
class Measured:
    """A measured run: the seconds of its training jobs and the pixel-views they trained."""

    run: plan.Run
    wall: float
    cpu: float
    pixel_views: int


def measured_runs(costs: dict[tuple[str, str], dict[str, float]], config: dict[str, Any], num_train: int | None,
                  where: str, costs_file: Path) -> list[Measured]:
    """Every trained run of the measured ``config`` (from file ``where``) with its costs; each of
    its training jobs must have a row in ``costs``."""
    jobs, missing = [], []
    for job in training_jobs(plan.expand_runs(config)):
        row = costs.get((job.family, job.job))
        if row is None:
            missing.append(f"{job.family} {job.job}")
            continue
        views = pixel_views(job, config["dataset"]["image_size"], num_train, where)[1]
        jobs.append(Measured(job.run, row["wall_s"], row["cpu_s"], views))
    if missing:
        raise UserInputError(f"--costs {costs_file}: no row for {len(missing)} training jobs that {where} plans "
                             f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): give the config "
                             "(and --measured-set overrides) of the run that wrote it")
    names = dict.fromkeys(m.run.name for m in jobs)
    return [_summed([m for m in jobs if m.run.name == name]) for name in names]


def _summed(jobs: list[Measured]) -> Measured:
    """One run's training jobs as one measurement."""
    return Measured(jobs[0].run, sum(m.wall for m in jobs), sum(m.cpu for m in jobs), sum(m.pixel_views for m in jobs))


def _tiers(target: plan.Run) -> Iterator[tuple[str, Any]]:
    """(basis, predicate) from the closest match to the loosest, among runs of the same match_key."""
    model = model_name(target.model)
    yield "same model and method", lambda m: model_name(m.run.model) == model and m.run.method == target.method
    yield "same model, other method", lambda m: model_name(m.run.model) == model
    yield f"same architecture and method, other model (target {model})", lambda m: m.run.method == target.method
    yield f"same architecture, other model and method (target {model})", lambda m: True


def rate_for(target: plan.Run, measured: list[Measured]) -> Rate | None:
    """The pooled seconds per pixel-view of the closest measured runs (None: its architecture is not measured)."""
    same_arch = [m for m in measured if match_key(m.run) == match_key(target)]
    for basis, predicate in _tiers(target):
        chosen = [m for m in same_arch if predicate(m)]
        if chosen:
            pooled = _summed(chosen)
            models = sorted({model_name(m.run.model) for m in chosen})
            return Rate(pooled.wall / pooled.pixel_views, pooled.cpu / pooled.pixel_views,
                        tuple(m.run.name for m in chosen), f"{basis}; measured {', '.join(models)}")
    return None


@dataclass(frozen=True)
class GroupEstimate:
    """The planned pretraining of one run group (or student) of the target and its estimate."""

    group: str
    runs: int
    model: str
    method: str
    steps: int
    image_views: int
    pixel_views: int
    match: tuple[str, ...]  # match_key of its runs
    rate: Rate | None

    @property
    def wall_s(self) -> float | None:
        return None if self.rate is None else self.rate.wall * self.pixel_views

    @property
    def cpu_s(self) -> float | None:
        return None if self.rate is None else self.rate.cpu * self.pixel_views


def estimate_groups(config: dict[str, Any], measured: list[Measured], num_train: int | None,
                    where: str) -> list[GroupEstimate]:
    """One estimate per trained run group of the target ``config`` (from file ``where``), in config order."""
    runs = plan.expand_runs(config)
    jobs: dict[str, list[TrainingJob]] = {}
    for job in training_jobs(runs):
        jobs.setdefault(job.run.group, []).append(job)
    estimates = []
    for group, group_jobs in jobs.items():
        first = group_jobs[0].run
        sized = [pixel_views(job, config["dataset"]["image_size"], num_train, where) for job in group_jobs]
        steps = sum(s for s, _ in sized)
        image_views = sum(s * job.run.pretrain["batch_size"] * VIEWS_PER_STEP for (s, _), job in zip(sized, group_jobs))
        estimates.append(GroupEstimate(group, len({job.run.name for job in group_jobs}), model_name(first.model),
                                       first.method, steps, image_views, sum(v for _, v in sized),
                                       match_key(first), rate_for(first, measured)))
    return estimates


def machine_description() -> str:
    """This machine: system, CPU model and core count."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores (this machine; --machine names another)"


def train_images(config: dict[str, Any], given: int | None) -> int | None:
    """Training images of a config: ``given`` (--train-images) if set, else what the config says."""
    if given is not None and given < 1:
        raise UserInputError(f"--train-images: {given} training images; give a positive count")
    return given if given is not None else training_set_size(config)


@dataclass(frozen=True)
class Sources:
    """Where the numbers come from, for the page's text."""

    costs: Path
    measured_config: str
    target_config: str
    machine: str
    measured_gpus: int  # the measured config's resources.pretrain.gpu
    measured_image_size: int
    target_image_size: int


def _seconds(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:,.0f}"


def _unmatched(estimate: GroupEstimate) -> str:
    if estimate.method == DISTILL:
        return f"no measured student of {estimate.match[0]} from a {estimate.match[1]} teacher"
    return f"no measured run of {estimate.match[0]}"


def _estimate_rows(estimates: list[GroupEstimate]) -> list[str]:
    header = ("| group | runs | model | method | steps | image-views | est. CPU s | est. wall s | est. wall h "
              "| from measured runs | basis |")
    rows = [header, "|---|---:|---|---|---:|---:|---:|---:|---:|---|---|"]
    for e in estimates:
        hours = NOT_MEASURED if e.wall_s is None else f"{e.wall_s / 3600:,.1f}"
        source = NOT_MEASURED if e.rate is None else ", ".join(e.rate.runs)
        basis = e.rate.basis if e.rate else _unmatched(e)
        rows.append(f"| {e.group} | {e.runs} | {e.model} | {e.method} | {e.steps:,} | {e.image_views:,} | "
                    f"{_seconds(e.cpu_s)} | {_seconds(e.wall_s)} | {hours} | {source} | {basis} |")
    return rows


def _measured_rows(measured: list[Measured]) -> list[str]:
    rows = ["| measured run | model | method | pixel-views | wall s | CPU s | wall s per 10⁹ pixel-views |",
            "|---|---|---|---:|---:|---:|---:|"]
    rows += [f"| {m.run.name} | {model_name(m.run.model)} | {m.run.method} | {m.pixel_views:,} | {m.wall:.1f} | "
             f"{m.cpu:.1f} | {m.wall / m.pixel_views * 1e9:,.1f} |" for m in measured]
    return rows


def _totals(estimates: list[GroupEstimate]) -> str:
    known = [e for e in estimates if e.rate is not None]
    unknown = [e.group for e in estimates if e.rate is None]
    wall, cpu = sum(e.wall_s for e in known), sum(e.cpu_s for e in known)
    text = (f"Estimated for {len(known)} of {len(estimates)} groups: {cpu:,.0f} CPU s ({cpu / 86400:,.1f} CPU-days), "
            f"{wall:,.0f} wall s ({wall / 86400:,.1f} days of the measured jobs' resources).")
    return text + (f" Not measured ({len(unknown)}): {', '.join(unknown)}." if unknown else "")


def assumptions(sources: Sources) -> list[str]:
    device = (f"on GPUs ({sources.measured_gpus} per pretraining job, the measured config's resources.pretrain.gpu)"
              if sources.measured_gpus else "on CPUs only (the measured config's resources.pretrain.gpu is 0)")
    scaling = (f"Linear in steps and in pixels per image ({sources.measured_image_size}² measured, "
               f"{sources.target_image_size}² planned), at {VIEWS_PER_STEP} views per step; a ViT's attention grows "
               "faster than its pixel count, and other widths or blocks of one architecture are scaled as if equal "
               "(the basis column says where).")
    return [f"- {text}" for text in (
        f"Measured {device}: CPU measurements do not transfer to GPUs, nor GPU ones to other GPUs.",
        scaling,
        ("A job's seconds include its start (imports, data loading, checkpoint writing): a short measured run "
         "overstates the cost per step."),
        ("A student's steps include its teacher's forward pass: it is matched only with measured students of the "
         "same student and teacher architectures."),
        "Wall seconds are of one job at a time on the measured job's resources; jobs run in parallel divide them.",
    )]


def render(estimates: list[GroupEstimate], measured: list[Measured], sources: Sources) -> str:
    """The Markdown page of the estimate."""
    runs, steps = sum(e.runs for e in estimates), sum(e.steps for e in estimates)
    target = (f"Target: {sources.target_config}, {len(estimates)} trained run groups, {runs} runs, "
              f"{steps:,} pretraining steps at {sources.target_image_size} px.")
    source = (f"Measured: {sources.costs} of a run of {sources.measured_config} ({len(measured)} trained runs at "
              f"{sources.measured_image_size} px), on: {sources.machine}.")
    lines = [
        f"# Pretraining compute of {sources.target_config}, estimated from measured costs", "", target, source, "",
        *_estimate_rows(estimates), "", _totals(estimates), "",
        "Measured runs (seconds summed over each run's training jobs):", "", *_measured_rows(measured), "",
        "Assumptions:", "", *assumptions(sources),
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Experiment:
    """A loaded config, the file it came from, and its training-set size (None: not known)."""

    config: dict[str, Any]
    source: str
    num_train: int | None


def estimate_page(costs_file: Path, measured: Experiment, target: Experiment, machine: str | None = None) -> str:
    """The estimate of ``target``'s pretraining from the costs a run of ``measured`` wrote;
    every input is checked (a UserInputError naming it) before anything is computed."""
    costs = read_costs(costs_file)
    runs = measured_runs(costs, measured.config, measured.num_train, measured.source, costs_file)
    estimates = estimate_groups(target.config, runs, target.num_train, target.source)
    sources = Sources(costs_file, measured.source, target.source, machine or machine_description(),
                      measured.config["resources"]["pretrain"].get("gpu", 0),
                      measured.config["dataset"]["image_size"], target.config["dataset"]["image_size"])
    return render(estimates, runs, sources)
