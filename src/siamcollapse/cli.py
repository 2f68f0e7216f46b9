"""`siamcollapse <stage>`: one command per pipeline stage, called by Snakemake and DVC alike.

Each command parses its arguments, checks its inputs (a clear error naming the path or key
before any work), calls the library and writes its outputs atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import UserInputError

Handler = Callable[[argparse.Namespace], None]


def _settings(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--settings is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--settings must be a JSON object")
    return value


def _prepare_data(args: argparse.Namespace) -> None:
    from .data.embedded import generate

    generate(args.out, seed=args.seed, num_classes=args.num_classes, train_per_class=args.train_per_class,
             val_per_class=args.val_per_class, image_size=args.image_size)


def _make_subset(args: argparse.Namespace) -> None:
    import numpy as np

    from .data.sources import scan_labels
    from .data.subsets import write_subset

    labels, _ = scan_labels(args.source, args.data_root, "train")
    record = write_subset(args.out, np.asarray(labels), args.fraction, args.seed, args.stratified)
    print(f"subset {args.fraction:g}: {record['count']} of {record['num_train']} training images, "
          f"{record['classes_present']} classes -> {args.out}")


def _pretrain(args: argparse.Namespace) -> None:
    from .training.loop import pretrain

    pretrain(args.settings, args.data_root, args.subset, args.out_dir)


def _extract(args: argparse.Namespace) -> None:
    from .evaluation.features import extract
    from .io import write_json
    from .metrics import spectrum_summary
    from .reporting.tables import write_spectrum
    from .training.checkpoint import load_backbone

    backbone, meta = load_backbone(args.checkpoint)
    data = {"source": args.source, "image_size": args.image_size, "in_memory": args.in_memory}
    singular_values = extract(backbone, meta["fingerprint"], data, args.data_root, args.features_dir,
                              args.batch_size, args.num_workers)
    write_spectrum(args.spectrum, singular_values)
    summary = {**spectrum_summary(singular_values), "split": "train"}
    write_json(args.summary, summary)
    print(f"train spectrum: AUC {summary['auc']:.4f}, effective rank {summary['effective_rank']:.1f} "
          f"of {summary['dims']} dimensions")


def _linear_probe(args: argparse.Namespace) -> None:
    from .evaluation.features import load_features
    from .evaluation.linear_probe import top1, train_linear_probe
    from .io import read_json, write_json
    from .models.backbones import state_fingerprint
    from .training.checkpoint import load_backbone

    backbone, meta = load_backbone(args.checkpoint)
    cached = read_json(args.features_dir / "meta.json")["fingerprint"]
    if cached != meta["fingerprint"] or state_fingerprint(backbone) != meta["fingerprint"]:
        raise UserInputError(f"features in {args.features_dir} were not extracted from {args.checkpoint}; "
                             "rerun the extract stage")
    train, train_labels = load_features(args.features_dir, "train")
    val, val_labels = load_features(args.features_dir, "val")
    settings = {"lr": args.lr, "epochs": args.epochs, "batch_size": args.batch_size,
                "weight_decay": args.weight_decay, "seed": args.seed}
    num_classes = int(max(train_labels.max(), val_labels.max())) + 1
    head, standardiser = train_linear_probe(train, train_labels, settings, num_classes)
    if state_fingerprint(backbone) != meta["fingerprint"]:
        raise RuntimeError("the backbone changed during linear probing")
    result = {"linear_top1": top1(head, standardiser, val, val_labels),
              "linear_train_top1": top1(head, standardiser, train, train_labels),
              "backbone_unchanged": True, "backbone_fingerprint": meta["fingerprint"], **settings}
    write_json(args.out, result)
    print(f"linear probe: val top-1 {result['linear_top1']:.2f}% (train {result['linear_train_top1']:.2f}%)")


def _knn(args: argparse.Namespace) -> None:
    from .evaluation.features import load_features
    from .evaluation.knn import knn_top1
    from .io import write_json

    train, train_labels = load_features(args.features_dir, "train")
    val, val_labels = load_features(args.features_dir, "val")
    accuracy = knn_top1(train, train_labels, val, val_labels, args.k, args.temperature)
    result = {"knn_top1": accuracy[args.k[0]], "knn_k": args.k[0], "temperature": args.temperature,
              **{f"knn_top1_k{k}": v for k, v in accuracy.items()}}
    write_json(args.out, result)
    print("kNN top-1: " + ", ".join(f"k={k}: {v:.2f}%" for k, v in accuracy.items()))


def _run_record(run_dir: Path) -> dict:
    from .io import read_json

    record = read_json(run_dir / "run.json")
    spectrum = read_json(run_dir / "spectrum.json")
    record.update(auc=spectrum["auc"], effective_rank=spectrum["effective_rank"])
    record.update({k: v for k, v in read_json(run_dir / "linear_probe.json").items() if k.startswith("linear_")})
    record.update({k: v for k, v in read_json(run_dir / "knn.json").items() if k.startswith("knn_")})
    return record


def _collect(args: argparse.Namespace) -> None:
    from .reporting.tables import build_run_table, write_run_table

    table = build_run_table([_run_record(d) for d in args.run_dirs])
    write_run_table(table, args.out_csv, args.out_md)
    print(f"{len(table)} runs -> {args.out_csv}, {args.out_md}")


def _plot(args: argparse.Namespace) -> None:
    import pandas as pd

    from .io import read_json
    from .reporting.plots import make_all_figures
    from .reporting.tables import read_spectrum

    table = pd.read_csv(args.table)
    spectra = {read_json(d / "run.json")["run"]: read_spectrum(d / "spectrum.csv") for d in args.run_dirs}
    for path in make_all_figures(table, spectra, args.out_dir):
        print(f"wrote {path}")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="siamcollapse", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="STAGE")

    def stage(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    p = stage("prepare-data", _prepare_data, "Generate the embedded procedural dataset (ImageFolder PNGs).")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--train-per-class", type=int, default=500)
    p.add_argument("--val-per-class", type=int, default=100)
    p.add_argument("--image-size", type=int, default=32)

    p = stage("make-subset", _make_subset, "Write the index file of one nested subset of the training set.")
    _data_args(p, with_format=False)
    p.add_argument("--fraction", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stratified", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", type=Path, required=True)

    p = stage("pretrain", _pretrain, "Self-supervised pretraining of one run (or a random-init backbone).")
    p.add_argument("--settings", type=_settings, required=True, help="JSON of the run's resolved settings")
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--subset", type=Path, default=None, help="subset index file (not for random-init)")
    p.add_argument("--out-dir", type=Path, required=True)

    p = stage("extract", _extract, "Backbone features of train and val, and the train spectrum.")
    p.add_argument("--checkpoint", type=Path, required=True)
    _data_args(p, with_format=True)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=4)
    p.add_argument("--features-dir", type=Path, required=True)
    p.add_argument("--spectrum", type=Path, required=True, help="CSV of singular values")
    p.add_argument("--summary", type=Path, required=True, help="JSON of spectrum metrics (AUC)")

    p = stage("linear-probe", _linear_probe, "Linear probe on cached features; top-1 on val.")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--features-dir", type=Path, required=True)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)

    p = stage("knn", _knn, "Weighted kNN on L2-normalised features; top-1 on val.")
    p.add_argument("--features-dir", type=Path, required=True)
    p.add_argument("--k", type=int, nargs="+", default=[20, 200])
    p.add_argument("--temperature", type=float, default=0.07)
    p.add_argument("--out", type=Path, required=True)

    p = stage("collect", _collect, "Gather every run's metrics into results tables (CSV and Markdown).")
    p.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    p.add_argument("--out-csv", type=Path, required=True)
    p.add_argument("--out-md", type=Path, required=True)

    p = stage("plot", _plot, "Spectrum and AUC figures (PNG).")
    p.add_argument("--table", type=Path, required=True)
    p.add_argument("--run-dirs", type=Path, nargs="+", required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    return parser


def _data_args(p: argparse.ArgumentParser, with_format: bool) -> None:
    p.add_argument("--source", default="embedded", help="embedded | imagefolder | cifar10 | cifar100 | stl10")
    p.add_argument("--data-root", type=Path, required=True)
    if with_format:
        p.add_argument("--image-size", type=int, default=32)
        p.add_argument("--in-memory", action=argparse.BooleanOptionalAction, default=True)


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.handler(args)
    except UserInputError as exc:
        print(f"siamcollapse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
