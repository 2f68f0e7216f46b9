"""Checkpoints: a resumable training state per epoch and the final backbone.

The resume state carries a hash of the settings it was trained with, so a run whose settings
changed starts afresh instead of continuing someone else's training.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from ..errors import UserInputError
from ..fingerprint import state_fingerprint, tensors_fingerprint
from ..io import UnreadableFile, load_torch, save_torch
from ..layout import RunDir


def settings_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def save_resume_state(run_dir: Path, state: dict[str, Any]) -> None:
    save_torch(RunDir(Path(run_dir)).resume, state)


def load_resume_state(run_dir: Path, expected_hash: str) -> dict[str, Any] | None:
    """The last epoch's state if it belongs to these settings, else None."""
    path = RunDir(Path(run_dir)).resume
    if not path.is_file():
        return None
    try:
        state = load_torch(path)
    except UnreadableFile as exc:  # e.g. truncated by a kill mid-save on a filesystem without atomic rename
        print(f"warning: {path} is unreadable ({exc.cause}); moved it to {exc.aside} and starting afresh", flush=True)
        return None
    if state.get("settings_hash") != expected_hash:
        print(f"ignoring {path}: it was trained with other settings; starting afresh", flush=True)
        return None
    return state


def discard_resume_state(run_dir: Path) -> None:
    RunDir(Path(run_dir)).resume.unlink(missing_ok=True)


def save_backbone(path: Path, backbone: torch.nn.Module, model: dict[str, Any], run: dict[str, Any],
                  epochs_trained: int, extras: dict[str, Any] | None = None) -> None:
    """The final checkpoint: backbone weights, how to rebuild them, and ``extras`` of the method."""
    save_torch(path, {
        **(extras or {}),
        "backbone": {k: v.detach().cpu() for k, v in backbone.state_dict().items()},
        "model": model,
        "feature_dim": backbone.feature_dim,
        "run": run,
        "epochs_trained": epochs_trained,
        "fingerprint": state_fingerprint(backbone),
    })


def _read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"checkpoint not found: {path}")
    return load_torch(path)


def load_backbone(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The backbone saved by ``save_backbone`` (eval mode, on CPU) and the checkpoint's metadata."""
    from ..models.backbones import backbone_from_config

    checkpoint = _read_checkpoint(path)
    backbone = backbone_from_config(checkpoint["model"])
    backbone.load_state_dict(checkpoint["backbone"])
    backbone.eval()
    return backbone, {k: v for k, v in checkpoint.items() if k != "backbone"}


def verified_backbone_meta(path: str | Path) -> dict[str, Any]:
    """A checkpoint's metadata, once its stored backbone weights are shown to hash to its
    fingerprint; the network is not built (a stage that only reads features needs no model code)."""
    checkpoint = _read_checkpoint(path)
    if tensors_fingerprint(checkpoint["backbone"]) != checkpoint["fingerprint"]:
        raise UserInputError(f"{path}: the stored backbone weights do not match the checkpoint's fingerprint; "
                             "rerun its pretraining")
    return {k: v for k, v in checkpoint.items() if k != "backbone"}
