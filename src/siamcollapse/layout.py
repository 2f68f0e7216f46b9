"""One home for every file name of an experiment's output tree.

Torch-free: the workflow rules, the stages, the training loop and the reports all name their
files through it, so renaming a file is a one-line change here.

    <output_dir>/
      subsets/<fraction tag>.json        nested subset indices (``OutputTree.subset``)
      runs/<run>/                        ``RunDir``: checkpoint.pt, train_log.csv, run.json,
                                         config.yaml, resume.pt (only while interrupted),
                                         state-epoch<K>.pt, features/ (``FeatureDir``),
                                         spectrum.csv, spectrum.json, linear_probe.json, knn.json
      tables/                            ``TABLE_FILES``: runs.csv, runs.md, the paper-shaped tables,
                                         forecast.csv, forecast.md, metrics.csv; COST_TABLE_FILES
      figures/                           ``FIGURE_NAMES``; run_groups/<group>.png (``run_group_figure``)
      logs/                              one log per job
      benchmarks/<rule>/<job>.tsv        Snakemake's benchmark of every job (``OutputTree.benchmark``)
      tracking/                          ``TrackingDir``: the experiment trackers' files, when
                                         tracking.log_with names any (never tracked outputs)

Beside it, in Snakemake's state directory of the working directory (one per working directory,
whatever the config: two configs sharing a data root share its code inputs too):

    .snakemake/siamcollapse/code/<stage>.sha256   the digest of a stage's code (``code_stamp``)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FEATURE_SPLITS = ("train", "val")
# What the collect stage writes into tables/: the run table (one row per run; one row per setting,
# mean ± sd over seeds), the paper-shaped tables, the forecast of accuracy by the label-free
# metrics (each .csv and .md), then every label-free metric of every spectrum in long format.
RUN_TABLE_FILES = ("runs.csv", "runs.md")
TABLE_NAMES = ("runs", "distillation", "training_methods", "strategies", "forecast")
CODE_STAMP_SUFFIX = ".sha256"
CODE_STAMP_DIR = Path(".snakemake") / "siamcollapse" / "code"
METRICS_TABLE_FILE = "metrics.csv"  # one row per (run, split, features, metric); no Markdown page
TABLE_FILES = (*(f"{name}.{ext}" for name in TABLE_NAMES for ext in ("csv", "md")), METRICS_TABLE_FILE)
assert TABLE_FILES[:2] == RUN_TABLE_FILES
COST_TABLE_FILES = ("costs.csv", "costs.md")  # what each job cost (collect reads the benchmark files)
SEGMENT_JOB = "{run}-epoch{epoch}"  # a pretraining segment's job: its log and benchmark names
# What the plot stage writes into figures/, in the order it writes them.
FIGURE_NAMES = (
    "singular_values.png",
    "normalized_spectrum.png",
    "cumulative_explained_variance.png",
    "auc_vs_fraction.png",
    "auc_vs_linear_top1.png",
    "spectra_by_method.png",
    "spectra_by_strategy.png",
    "tracked_metrics.png",
    "collapse_over_training.png",
    "forecast.png",
)


def run_group_figure(figures: Path, group: str) -> Path:
    """The pretraining curves of one run group (its page of the Snakemake report), in ``figures``."""
    return figures / "run_groups" / f"{group}.png"


@dataclass(frozen=True)
class FeatureDir:
    """Cached features of one run: ``<split>.npy`` (N x d float32), ``<split>_labels.npy``, meta.json."""

    path: Path

    def features(self, split: str) -> Path:
        return self.path / f"{split}.npy"

    def labels(self, split: str) -> Path:
        return self.path / f"{split}_labels.npy"

    def split(self, split: str) -> tuple[Path, Path]:
        """The features and labels of ``split``, as the probes read them (``io.load_tensors``)."""
        return self.features(split), self.labels(split)

    @property
    def meta(self) -> Path:
        return self.path / "meta.json"

    def files(self) -> list[Path]:
        """Every file the extraction writes (the outputs of its rule)."""
        return [*(f(split) for split in FEATURE_SPLITS for f in (self.features, self.labels)), self.meta]


@dataclass(frozen=True)
class RunDir:
    """The directory of one run and every file its stages write there."""

    path: Path

    @property
    def checkpoint(self) -> Path:  # the trained backbone (pretrain)
        return self.path / "checkpoint.pt"

    @property
    def train_log(self) -> Path:  # one row per epoch (pretrain)
        return self.path / "train_log.csv"

    @property
    def info(self) -> Path:  # the run's record: method, arch, fraction, seed, ... (pretrain)
        return self.path / "run.json"

    @property
    def settings(self) -> Path:  # the run's resolved settings (pretrain)
        return self.path / "config.yaml"

    @property
    def written_by(self) -> Path:  # the config files of the last pretrain (never a tracked output)
        return self.path / ".written-by.json"

    @property
    def resume(self) -> Path:  # the training state of an interrupted run, deleted when it ends
        return self.path / "resume.pt"

    def state(self, epoch: int | str) -> Path:
        """The training state after ``epoch``, which a hybrid run (or the next segment) continues."""
        return self.path / f"state-epoch{epoch}.pt"

    @property
    def features(self) -> FeatureDir:  # extract
        return FeatureDir(self.path / "features")

    @property
    def spectrum(self) -> Path:  # the singular values (extract)
        return self.path / "spectrum.csv"

    @property
    def spectrum_summary(self) -> Path:  # AUC, effective rank (extract)
        return self.path / "spectrum.json"

    @property
    def linear_probe(self) -> Path:
        return self.path / "linear_probe.json"

    @property
    def knn(self) -> Path:
        return self.path / "knn.json"


@dataclass(frozen=True)
class TrackingDir:
    """Where the file-based experiment trackers write: one TensorBoard and one DVCLive directory per
    run (``tensorboard --logdir tracking/tensorboard`` shows them all), one MLflow store."""

    path: Path

    def tensorboard(self, run: str) -> Path:
        return self.path / "tensorboard" / run

    def dvclive(self, run: str) -> Path:
        return self.path / "dvclive" / run

    def dvclive_metrics(self, run: str) -> Path:  # DVCLive's latest values, a DVC metric of the pipeline
        return self.dvclive(run) / "metrics.json"

    @property
    def mlflow(self) -> Path:  # MLflow's SQLite store (its recommended local backend)
        return self.path / "mlflow.db"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.path / "mlartifacts"

    @property
    def start_lock(self) -> Path:  # held while a job starts its tracker runs (training.tracking)
        return self.path / ".start.lock"


@dataclass(frozen=True)
class OutputTree:
    """An experiment's ``output_dir``."""

    root: Path

    def run(self, name: str) -> RunDir:
        return RunDir(self.root / "runs" / name)

    def subset(self, tag: str) -> Path:
        return self.root / "subsets" / f"{tag}.json"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    @property
    def run_table(self) -> Path:
        return self.tables / RUN_TABLE_FILES[0]

    @property
    def run_summary(self) -> Path:
        return self.tables / RUN_TABLE_FILES[1]

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def benchmarks(self) -> Path:
        return self.root / "benchmarks"

    def benchmark(self, rule: str, job: str | None = None) -> Path:
        """Snakemake's benchmark file of a job of ``rule`` (``job``: its wildcards, e.g. "{run}")."""
        return self.benchmarks / rule / f"{job or rule}.tsv"

    @property
    def tracking(self) -> TrackingDir:
        return TrackingDir(self.root / "tracking")


def code_stamp(stage: str) -> Path:
    """The digest of a stage's code files, the code input of its Snakemake jobs (codedeps)."""
    return CODE_STAMP_DIR / f"{stage}{CODE_STAMP_SUFFIX}"
