"""A synthetic experiment whose label-free metrics have a known relation to accuracy.

Five trained settings of one arch (SimSiam IID on 100 % and 10 % of the data, SimSiam
single-pass, MoCo-v3 and BYOL), three seeds each, plus the random-init floor (three seeds) and
raw pixels. Every metric is a fixed function of the run's linear top-1 ``q``:

- auc = 0.95 - q / 200 and rankme = 2 q: perfect forecasters (rho = -1 and +1, the expected signs);
- alpha_req = 0.5 + q / 50: rises with accuracy, against its expected sign (reversed);
- nesum = 5 for every run: constant, so no correlation at all;
- lidar = 1.5 q, missing (null) on one run.

The numbers are illustrative, not the paper's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from siamcollapse.metrics import SPECTRUM_METRICS

ARCH = "resnet18"
SETTINGS = {  # seed group -> (method, fraction, strategy, linear top-1 of seed 0); each with its recipe's warmup
    "ss-iid-100": ("simsiam", 1.0, "iid", 40.0),
    "ss-iid-10": ("simsiam", 0.1, "iid", 30.0),
    "ss-sp-100": ("simsiam", 1.0, "single-pass", 48.0),
    "moco-100": ("mocov3", 1.0, "iid", 45.0),
    "byol-100": ("byol", 1.0, "iid", 43.0),
}
SEEDS = (0, 1, 2)
SEED_STEP = 0.5  # each seed adds this much linear top-1
NO_LIDAR = "byol-100-s2"  # the run without a LiDAR value
NUM_CLASSES = 10
TRAIN_LOG_COLUMNS = ["epoch", "steps", "loss", "lr", "images_per_s", "z_std", "z_std_healthy", "elapsed_s"]


def metrics_of(top1: float) -> dict[str, float]:
    """The label-free metrics of a run of linear top-1 ``top1`` (see the module doc)."""
    return {"auc": 0.95 - top1 / 200, "rankme": 2 * top1, "alpha_req": 0.5 + top1 / 50, "nesum": 5.0,
            "lidar": 1.5 * top1, "effective_rank": 2 * top1 + 0.001}


def record(run: str, method: str, fraction: float, strategy: str, top1: float, **extra: Any) -> dict[str, Any]:
    """A run record as the collect stage builds it (run.json, spectrum.json, probes)."""
    return {"run": run, "method": method, "arch": ARCH, "dataset_fraction": fraction, "strategy": strategy,
            "linear_top1": top1, "knn_top1": top1 - 2.0, "num_classes": NUM_CLASSES, **metrics_of(top1), **extra}


def experiment_records() -> list[dict[str, Any]]:
    """Every run of the synthetic experiment: 15 trained, 3 random-init, 1 raw-pixel."""
    records = []
    for group, (method, fraction, strategy, top1) in SETTINGS.items():
        for seed in SEEDS:
            run = f"{group}-s{seed}"
            warmup = 10 if method in ("mocov3", "byol") else 0
            records.append(record(run, method, fraction, strategy, top1 + SEED_STEP * seed, seed=seed, seed_group=group,
                                  warmup_epochs=warmup))
            if run == NO_LIDAR:
                records[-1]["lidar"] = None
    for seed in SEEDS:
        records.append(record(f"random-init-s{seed}", "random-init", math.nan, "none", 12.0 + 0.2 * seed, seed=seed,
                              seed_group="random-init", auc=0.97, rankme=4.0, alpha_req=2.5, nesum=1.5, lidar=3.0))
    records.append(record("raw-pixels", "raw-pixels", math.nan, "none", 15.0, arch="raw-pixels"))
    return records


def trained_top1() -> dict[str, float]:
    """Run -> linear top-1 of the trained runs."""
    return {r["run"]: r["linear_top1"] for r in experiment_records() if r["method"] not in ("random-init", "raw-pixels")}


def train_log(final: dict[str, float], epochs: int = 6, track_every: int = 2, tracked: bool = True) -> pd.DataFrame:
    """A train log as the training loop writes it: tracked metrics every ``track_every`` epochs
    (empty cells otherwise), each moving linearly from a collapsed start to ``final``'s value."""
    rows = []
    for epoch in range(1, epochs + 1):
        row: dict[str, Any] = {"epoch": epoch, "steps": 10 * epoch, "loss": -0.5 - 0.01 * epoch, "lr": 0.05,
                               "images_per_s": 100.0, "z_std": 0.02, "z_std_healthy": 0.0442, "elapsed_s": 1.0 * epoch}
        if tracked:
            on = epoch % track_every == 0
            row |= {m: final[m] * (0.5 + 0.5 * epoch / epochs) if on else None for m in SPECTRUM_METRICS}
        rows.append(row)
    return pd.DataFrame(rows, columns=TRAIN_LOG_COLUMNS + (list(SPECTRUM_METRICS) if tracked else []))


def write_train_log(path: Path, log: pd.DataFrame) -> Path:
    log.to_csv(path, index=False)
    return path


# What each spectrum variant adds to the headline metrics (train_raw is the headline itself).
VARIANT_OFFSETS = {"train_raw": 0.0, "train_l2": 0.01, "val_raw": 0.02, "val_l2": 0.03}


def spectrum_summary(values: dict[str, float | None], variants: bool = True) -> dict[str, Any]:
    """A spectrum.json as the extract stage writes it for ``values`` (``metrics_of``): the headline
    (training split, raw features), LiDAR of the raw and l2 features and, with ``variants``, every
    spectrum's metrics, each variant's shifted by ``VARIANT_OFFSETS``."""
    keys = (*SPECTRUM_METRICS, "effective_rank")
    headline = {k: values[k] for k in keys} | {"dims": 64, "top_singular_value": 2.0}
    lidar = values.get("lidar")
    summary = {**headline, "split": "train", "features": "raw", "lidar": lidar,
               "lidar_l2": None if lidar is None else lidar + 1.0, "lidar_images": 64, "lidar_views": 4}
    if variants:
        summary["variants"] = {name: {**headline, **{k: values[k] + offset for k in keys}}
                               for name, offset in VARIANT_OFFSETS.items()}
    return summary
