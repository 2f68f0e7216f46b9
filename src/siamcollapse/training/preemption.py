"""Stopping cleanly when SLURM (or a user) sends SIGTERM.

SLURM sends SIGTERM on preemption, at the time limit and on ``scancel``, then SIGKILL after
its KillWait (30 s by default). Training notes the signal, finishes the step it is in, saves a
resumable state and raises ``errors.TrainingInterrupted``; the rerun (a requeued job, Snakemake's
``retries``) continues from that step. Processes agree on the step to stop at, so no process
waits in a collective that the others have left.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Self

import torch

from ..distributed import all_reduce_max, is_distributed


class StopSignal:
    """Within ``with StopSignal() as stop:``, SIGTERM sets a flag instead of killing the process."""

    def __init__(self) -> None:
        self.received = False
        self._previous = None

    def __enter__(self) -> Self:
        self._previous = signal.signal(signal.SIGTERM, self._note)
        return self

    def __exit__(self, *exc_info) -> None:
        signal.signal(signal.SIGTERM, self._previous)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = True

    def agreed(self, device: torch.device) -> bool:
        """Whether any process got the signal (a collective: every process must call it)."""
        if not is_distributed():
            return self.received
        return bool(all_reduce_max(torch.tensor([float(self.received)], device=device)).item())
