"""A hash of a network's weights: proves which backbone features came from and that it was not changed.

It hashes named tensors (a ``state_dict``), so a checkpoint's stored weights can be checked without
building the network (and without importing the model code: the cached linear probe does this).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def tensors_fingerprint(state: Mapping[str, Any]) -> str:
    """sha256 over every (name, tensor) pair, in name order; equal weights give equal hashes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def state_fingerprint(module: Any) -> str:
    """The fingerprint of every parameter and buffer of ``module`` (an ``nn.Module``)."""
    return tensors_fingerprint(module.state_dict())
