"""The experiment plan: which runs a validated config asks for, and each stage's settings.

Both workflow engines read the DAG from here, so a run's name, directory and settings are
computed in one place. ``stage_config_keys`` names the config keys each stage reads: Snakemake
records their values as rule params and DVC declares them as stage ``params:``, so a change of
one key reruns only the stages (and runs) that read it, in either engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import deep_merge, get_dotted
from .data.folders import check_splits
from .errors import UserInputError
from .layout import OutputTree, RunDir
from .models.naming import model_name, relevant_model
from .names import DISTILL, RANDOM_INIT, RAW_PIXELS


@dataclass(frozen=True)
class Run:
    """One backbone that goes through the evaluation stages."""

    name: str
    group: str
    method: str
    strategy: str
    dataset_fraction: float | None  # None for the random-init baseline (it sees no data)
    model: dict[str, Any] = field(hash=False)
    pretrain: dict[str, Any] = field(hash=False)
    augment: dict[str, Any] = field(default_factory=dict, hash=False)
    teacher: Run | None = field(default=None, hash=False)  # distillation students only
    seed: int | None = None  # pretraining (or init) seed; None for the raw-pixel floor
    seed_group: str | None = None  # the name every seed of this setting shares (default: the name)

    @property
    def is_baseline(self) -> bool:
        """An untrained random-init backbone."""
        return self.method == RANDOM_INIT

    @property
    def is_raw_pixels(self) -> bool:
        """The raw-pixel floor: no backbone, no pretraining, no checkpoint."""
        return self.method == RAW_PIXELS

    @property
    def is_floor(self) -> bool:
        return self.is_baseline or self.is_raw_pixels

    def info(self) -> dict[str, Any]:
        """What the results tables say about this run."""
        return {
            "run": self.name,
            "seed_group": self.seed_group or self.name,
            "seed": self.seed,
            "group": self.group,
            "method": self.method,
            "arch": RAW_PIXELS if self.is_raw_pixels else model_name(self.model),
            "dataset_fraction": self.dataset_fraction,
            "strategy": self.strategy,
            "epochs": self.pretrain.get("epochs"),  # with switch_epoch: where a hybrid switches
            "warmup_epochs": self.pretrain.get("warmup_epochs", 0),
            "switch_epoch": self.pretrain.get("switch_epoch") if self.strategy == "hybrid" else None,
            "teacher": self.teacher.name if self.teacher else None,
            "teacher_method": self.teacher.method if self.teacher else None,
            "teacher_arch": model_name(self.teacher.model) if self.teacher else None,
        }


def fraction_tag(fraction: float) -> str:
    """0.05 -> '5pct', 1.0 -> '100pct', 0.005 -> '0.5pct' (names of subset files and runs)."""
    return f"{fraction * 100:g}pct"


def run_name(base: str, seed: int | None) -> str:
    """The name of one run: ``base`` ('<group>-<fraction>', a student's or a baseline's name),
    plus '-s<seed>' where its group lists ``seeds:`` (so an unseeded config keeps its names)."""
    return base if seed is None else f"{base}-s{seed}"


def check_seeds(seeds: Any, where: str) -> list[int] | None:
    """A listed ``seeds:`` value: non-empty, non-negative, distinct integers (None: not listed)."""
    if seeds is None:
        return None
    if not isinstance(seeds, list) or not seeds:
        raise UserInputError(f"config: key '{where}': list at least one seed (or leave the key out)")
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UserInputError(f"config: key '{where}': seeds are non-negative integers, got {seed!r}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise UserInputError(f"config: key '{where}': seed {repeated[0]} is listed twice")
    return list(seeds)


def _seeded(pretrain: dict[str, Any], seed: int | None, vary_ordering: bool) -> dict[str, Any]:
    """The settings of one seed of a group: ``seed`` replaces the pretraining seed; the data
    ordering stays that of the group's own seed unless the group asks to vary it too."""
    if seed is None:
        return pretrain
    ordering = {} if vary_ordering else {"ordering_seed": pretrain.get("ordering_seed", pretrain["seed"])}
    return {**pretrain, "seed": seed, **ordering}


def _model_key(model: dict[str, Any]) -> str:
    return json.dumps(model, sort_keys=True)


def group_model(config: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """The backbone of a run group (or student): the config's model with the spec's overrides."""
    return relevant_model(deep_merge(config["model"], spec.get("model", {})), config["dataset"]["image_size"])


def resolve_pretrain(config: dict[str, Any], overrides: dict[str, Any], where: str,
                     method: str | None = None) -> dict[str, Any]:
    """A run's pretraining settings: general settings, its method's defaults, then ``overrides``.

    ``where`` is the dotted key of ``overrides`` (for errors): an override must be a general key
    or a hyperparameter of the run's method (``method``, else the one the settings name).
    """
    general = {**config["pretrain"], **{k: v for k, v in overrides.items() if k in config["pretrain"]}}
    method = method or general["method"]
    general["method"] = method
    method_defaults = {k: v for k, v in config["methods"][method].items() if k != "augment"}
    for key in overrides:
        if key not in general and key not in method_defaults:
            raise UserInputError(f"config: key '{where}.{key}': not a setting of method {method} "
                                 f"(its settings: {', '.join(method_defaults)})")
    return {**general, **method_defaults, **{k: v for k, v in overrides.items() if k in method_defaults}}


def resolve_augment(config: dict[str, Any], method: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Top-level augmentation, then the method's overrides, then the run group's."""
    return deep_merge(deep_merge(config["augment"], config["methods"][method].get("augment", {})), spec.get("augment", {}))


def _group_seeds(config: dict[str, Any]) -> dict[str, list[int] | None]:
    """Every seed list of the config, checked before any run is planned."""
    seeds = {f"runs.{g}": check_seeds(spec.get("seeds"), f"runs.{g}.seeds") for g, spec in config["runs"].items()}
    seeds |= {f"distillations.{n}": check_seeds(spec.get("seeds"), f"distillations.{n}.seeds")
              for n, spec in config["distillations"].items()}
    seeds["random_init_seeds"] = check_seeds(config.get("random_init_seeds"), "random_init_seeds")
    return seeds


def expand_runs(config: dict[str, Any]) -> dict[str, Run]:
    """Every pretraining run (one per group, fraction and listed seed), every distillation student
    (one per listed seed), one random-init run per model (and seed), and the raw-pixel floor."""
    seeds = _group_seeds(config)
    runs: dict[str, Run] = {}
    for group, spec in config["runs"].items():
        model = group_model(config, spec)
        pretrain = resolve_pretrain(config, spec.get("pretrain", {}), f"runs.{group}.pretrain")
        augment = resolve_augment(config, pretrain["method"], spec)
        for fraction in spec["fractions"]:
            base = f"{group}-{fraction_tag(fraction)}"
            for seed in seeds[f"runs.{group}"] or [None]:
                name = run_name(base, seed)
                if name in runs:
                    raise UserInputError(f"config: key 'runs.{group}.fractions': {fraction} is listed twice")
                hp = _seeded(pretrain, seed, spec.get("vary_ordering", False))
                runs[name] = Run(name, group, hp["method"], hp["strategy"], fraction, model, hp, augment,
                                 seed=hp["seed"], seed_group=base)
    for run in list(runs.values()):
        check_schedule(run, f"runs.{run.group}.pretrain")
        if run.strategy == "hybrid":
            hybrid_source(runs, run)
    _add_students(config, runs, seeds)
    if config["random_init_baseline"]:
        _add_baselines(config, runs, seeds["random_init_seeds"])
    if raw_pixels_enabled(config):
        runs[RAW_PIXELS] = Run(RAW_PIXELS, RAW_PIXELS, RAW_PIXELS, "none", None,
                               {"max_side": config["raw_pixels"]["max_side"]}, {})
    return runs


def raw_pixels_enabled(config: dict[str, Any]) -> bool:
    """``raw_pixels.enabled``; null (the default) follows ``random_init_baseline``."""
    enabled = config["raw_pixels"]["enabled"]
    return config["random_init_baseline"] if enabled is None else enabled


def teacher_of(runs: dict[str, Run], teacher: str, seed: int | None, where: str) -> Run:
    """The run a student (of ``seed``, None if its entry lists no seeds) distils.

    ``teacher`` names a run, or the seed group of a teacher whose group lists seeds: seed s of a
    seeded student then learns from seed s of the teacher.
    """
    if teacher in runs:
        return runs[teacher]
    seeded = sorted(r.name for r in runs.values() if r.seed_group == teacher and r.name != teacher)
    if seeded and seed is not None:
        name = run_name(teacher, seed)
        if name in runs:
            return runs[name]
        raise UserInputError(f"config: key '{where}.teacher': '{teacher}' has no seed {seed} "
                             f"(its runs: {', '.join(seeded)})")
    if seeded:
        raise UserInputError(f"config: key '{where}.teacher': '{teacher}' has one run per seed; name one "
                             f"({', '.join(seeded)}) or list the student's seeds")
    raise UserInputError(f"config: key '{where}.teacher': no run named '{teacher}' (runs: {', '.join(runs)})")


def _add_students(config: dict[str, Any], runs: dict[str, Run], seeds: dict[str, list[int] | None]) -> None:
    for name, spec in config["distillations"].items():
        where = f"distillations.{name}"
        overrides = spec.get("pretrain", {})
        if "method" in overrides:
            raise UserInputError(f"config: key '{where}.pretrain.method': a student is always distilled")
        pretrain = resolve_pretrain(config, overrides, f"{where}.pretrain", method=DISTILL)
        if pretrain["strategy"] == "hybrid":
            raise UserInputError(f"config: key '{where}.pretrain.strategy': students cannot use 'hybrid'")
        for seed in seeds[where] or [None]:
            student_name = run_name(name, seed)
            if student_name in runs:
                raise UserInputError(f"config: key '{where}': a run named '{student_name}' already exists")
            teacher = teacher_of(runs, spec["teacher"], seed, where)
            hp = _seeded(pretrain, seed, spec.get("vary_ordering", False))
            student = Run(student_name, name, DISTILL, hp["strategy"], spec.get("fraction", 1.0),
                          group_model(config, spec), hp, resolve_augment(config, DISTILL, spec), teacher,
                          seed=hp["seed"], seed_group=name)
            check_schedule(student, f"{where}.pretrain")
            runs[student_name] = student


def _add_baselines(config: dict[str, Any], runs: dict[str, Run], seeds: list[int] | None) -> None:
    baselines: dict[str, dict[str, Any]] = {}
    for run in runs.values():
        baselines.setdefault(_model_key(run.model), run.model)
    for model in baselines.values():
        base = _baseline_name(model, runs)
        for seed in seeds or [None]:
            init_seed = config["pretrain"]["seed"] if seed is None else seed
            name = run_name(base, seed)
            runs[name] = Run(name, RANDOM_INIT, RANDOM_INIT, "none", None, model, {"seed": init_seed},
                             seed=init_seed, seed_group=base)


def check_schedule(run: Run, where: str) -> None:
    """Reject strategy and schedule settings that cannot be trained, naming the key."""
    hp = run.pretrain
    chunks = hp["chunks"] or hp["epochs"]
    if hp["warmup_epochs"] >= hp["epochs"]:
        raise UserInputError(f"config: key '{where}.warmup_epochs': {hp['warmup_epochs']} must be below "
                             f"epochs ({hp['epochs']})")
    if run.strategy in ("single-pass", "cumulative", "hybrid") and chunks > hp["epochs"]:
        raise UserInputError(f"config: key '{where}.chunks': {chunks} chunks over {hp['epochs']} epochs; "
                             f"'{run.strategy}' would never train on some chunks")
    if run.strategy == "last" and hp["last_chunks"] > chunks:
        raise UserInputError(f"config: key '{where}.last_chunks': {hp['last_chunks']} is more than the {chunks} chunks")
    if run.strategy == "hybrid" and not (hp["switch_epoch"] and hp["switch_epoch"] < hp["epochs"] and hp["hybrid_from"]):
        raise UserInputError(f"config: key '{where}': strategy 'hybrid' needs switch_epoch (below epochs) "
                             "and hybrid_from (the group of its single-pass run)")


# Settings a hybrid run may differ in from the single-pass run it continues.
_HYBRID_OWN_KEYS = ("strategy", "switch_epoch", "hybrid_from")


def hybrid_source(runs: dict[str, Run], run: Run) -> Run:
    """The single-pass run whose epoch-K training state the hybrid ``run`` continues."""
    where = f"runs.{run.group}.pretrain.hybrid_from"
    seeded = run.seed_group != run.name  # a hybrid with seeds continues the single-pass run of its seed
    name = run_name(f"{run.pretrain['hybrid_from']}-{fraction_tag(run.dataset_fraction)}", run.seed if seeded else None)
    source = runs.get(name)
    if source is None or source.strategy != "single-pass":
        seed = f" with seed {run.seed} (seeds listed on both groups pair up)" if seeded else ""
        raise UserInputError(f"config: key '{where}': group '{run.pretrain['hybrid_from']}' has no single-pass "
                             f"run on {fraction_tag(run.dataset_fraction)} of the data{seed} (no run '{name}')")
    differs = [k for k in run.pretrain if k not in _HYBRID_OWN_KEYS and run.pretrain[k] != source.pretrain.get(k)]
    if source.model != run.model or source.augment != run.augment:
        differs.append("model/augment")
    if differs:
        raise UserInputError(f"config: key '{where}': the hybrid run must match its single-pass run "
                             f"'{source.name}' except its strategy; they differ in {', '.join(differs)}")
    return source


def snapshot_epochs(runs: dict[str, Run], name: str) -> list[int]:
    """Epochs after which run ``name`` saves a training state that hybrid runs continue from."""
    return sorted({r.pretrain["switch_epoch"] for r in runs.values()
                   if r.strategy == "hybrid" and hybrid_source(runs, r).name == name})


def initial_state(runs: dict[str, Run], name: str, until_epoch: int | None = None) -> tuple[str, int] | None:
    """(run, epoch) of the training state that run ``name`` (up to ``until_epoch``) starts from.

    A hybrid run continues its single-pass run's epoch-K state; a run that provides snapshots is
    trained in segments, each continuing the previous snapshot. None: start from scratch.
    """
    run = runs[name]
    if run.strategy == "hybrid" and until_epoch is None:
        return hybrid_source(runs, run).name, run.pretrain["switch_epoch"]
    earlier = [k for k in snapshot_epochs(runs, name) if until_epoch is None or k < until_epoch]
    return (name, earlier[-1]) if earlier else None


def _baseline_name(model: dict[str, Any], taken: dict[str, Run]) -> str:
    name = f"{RANDOM_INIT}-{model_name(model)}"
    if any(run.seed_group == name for run in taken.values()):  # two models share a name (they differ in stem): tell them apart
        name = f"{name}-{model.get('stem', 'vit')}"
    return name


def find_run(config: dict[str, Any], name: str, configfile: str | Path = "config.yaml") -> Run:
    """The run ``name`` of ``config`` (read from ``configfile``, which the advice names)."""
    runs = expand_runs(config)
    if name not in runs:
        raise UserInputError(
            f"run '{name}' is not in this config (its runs: {', '.join(runs)}); if dvc repro ran this, its "
            f"pipeline is out of date: regenerate it with `siamcollapse dvc-yaml --configfile {configfile}`"
        )
    return runs[name]


def fractions(config: dict[str, Any]) -> list[float]:
    """All subset fractions the runs (and students) train on, sorted."""
    return sorted({run.dataset_fraction for run in expand_runs(config).values() if run.dataset_fraction is not None})


def trained_groups(runs: dict[str, Run]) -> list[str]:
    """The run groups (and distillations) with a trained run, in config order: each gets a page of
    pretraining curves in the report."""
    return list(dict.fromkeys(run.group for run in runs.values() if not run.is_floor))


def backbone_runs(runs: dict[str, Run]) -> list[str]:
    """Runs with a backbone checkpoint (every run but the raw-pixel floor)."""
    return [name for name, run in runs.items() if not run.is_raw_pixels]


# --- paths --------------------------------------------------------------------------------


def output_tree(config: dict[str, Any]) -> OutputTree:
    return OutputTree(Path(config["output_dir"]))


def run_dir(config: dict[str, Any], run: str) -> RunDir:
    return output_tree(config).run(run)


def subset_file(config: dict[str, Any], fraction: float) -> Path:
    return output_tree(config).subset(fraction_tag(fraction))


# --- stage settings -----------------------------------------------------------------------


# Config keys (dotted, at the granularity the stage reads them) of the stages that do not
# depend on the run; tables and figures read only the runs' result files.
STAGE_CONFIG_KEYS: dict[str, list[str]] = {
    "prepare_data": ["embedded"],
    "make_subset": ["dataset.source", "subsets"],
    "extract_features": ["dataset", "evaluation", "augment"],  # augment: an untrained floor's LiDAR views
    "extract_raw_pixels": ["dataset", "evaluation", "augment", "raw_pixels.max_side"],
    "linear_probe": ["linear_probe"],
    "augmented_probe": ["dataset", "evaluation", "linear_probe"],
    "knn": ["knn"],
    "collect_tables": ["report"],
    "plot_figures": [],
}


def stage_config_keys(config: dict[str, Any], stage: str, run: Run | None = None) -> list[str]:
    """The config keys ``stage`` (of ``run``, for pretraining) reads: its DVC params."""
    if stage != "pretrain":
        return list(STAGE_CONFIG_KEYS[stage])
    if run is None:
        raise ValueError("the pretrain stage's keys depend on the run")
    if run.is_raw_pixels:
        raise ValueError("the raw-pixel floor has no pretrain stage")
    if run.is_baseline:  # an untrained backbone: only its architecture and the init seed matter
        specs = {**{f"runs.{g}": spec for g, spec in config["runs"].items()},
                 **{f"distillations.{g}": spec for g, spec in config["distillations"].items()}}
        overrides = [f"{key}.model" for key, spec in specs.items()
                     if "model" in spec and group_model(config, spec) == run.model]
        size = ["dataset.image_size"] if "image_size" in run.model else []
        seed = [] if run.seed_group != run.name else ["pretrain.seed"]  # a listed seed is in the run's name
        return ["model", *seed, *size, *overrides]
    if run.teacher is not None:
        return ["dataset", "model", "pretrain", "augment", f"methods.{DISTILL}", f"distillations.{run.group}"]
    overrides = [f"runs.{run.group}.{section}" for section in ("model", "pretrain", "augment")
                 if section in config["runs"][run.group]]
    return ["dataset", "model", "pretrain", "augment", f"methods.{run.method}", *overrides]


def stage_settings(config: dict[str, Any], stage: str, run: Run | None = None) -> dict[str, Any]:
    """``{key: resolved value}`` of every key the stage reads (Snakemake's rule params)."""
    return {key: get_dotted(config, key) for key in stage_config_keys(config, stage, run)}


def pretrain_settings(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """Everything the pretraining stage of ``run`` depends on, besides its input files."""
    if run.is_baseline:
        return {"run": run.info(), "model": run.model, "pretrain": run.pretrain}
    dataset = config["dataset"]
    return {
        "run": run.info(),
        "model": run.model,
        "pretrain": run.pretrain,
        "data": {k: dataset[k] for k in ("source", "image_size", "in_memory")},
        "augment": run.augment,
    }


def check_dataset_root(config: dict[str, Any]) -> None:
    """A dataset the pipeline does not generate must already be on disk, an image folder with
    every split, the same classes in each and no empty class folder: checked before any job."""
    dataset = config["dataset"]
    if dataset["source"] != "embedded" and not Path(dataset["root"]).is_dir():
        raise UserInputError(
            f"key 'dataset.root': {dataset['root']} does not exist (source '{dataset['source']}' is read "
            "from disk, never downloaded); set dataset.root in the config file, or on Snakemake's command line "
            "with --config 'dataset={root: PATH}'"
        )
    if dataset["source"] == "imagefolder":
        check_splits(Path(dataset["root"]), dataset["val_classes"])
