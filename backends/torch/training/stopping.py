"""Stopping a run on request: SIGINT/SIGTERM finish the step, save, and stop.

The signal handler only sets a flag; the loop asks ``StopCheck`` after each step whether any
rank has it set (all ranks stop at the same step), saves ``last.pt`` and raises
``TrainingInterrupted`` with the command that continues the run. A second Ctrl-C stops at once;
``last.pt`` is then the previous complete checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnc.errors import StoppedByRequest
from mnc_backends.torch.training import distributed, rundir


class TrainingInterrupted(StoppedByRequest):
    """SIGINT or SIGTERM stopped the run after it saved a checkpoint to resume from."""


@dataclass
class StopFlag:
    """Set by SIGINT/SIGTERM while ``installed``; the previous handlers come back after."""

    signal_name: str | None = None
    previous: dict[signal.Signals, Any] = field(default_factory=dict)

    def _handle(self, number: int, _frame: Any) -> None:
        if self.signal_name is not None and number == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now (last.pt is still complete)
        self.signal_name = signal.Signals(number).name

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self._handle)
        try:
            yield self
        finally:
            for number, handler in self.previous.items():
                signal.signal(number, handler)


@dataclass
class StopCheck:
    """Whether the run stops, agreed by every rank.

    Asking costs an all-reduce under DDP, so there it is asked every ``DISTRIBUTED_EVERY``
    steps and at the end of each epoch; a world of one asks after every step.
    """

    flag: StopFlag
    context: distributed.Context
    folder: Path

    DISTRIBUTED_EVERY = 10

    def requested(self) -> bool:
        return distributed.any_rank(self.flag.signal_name is not None, self.context)

    def requested_after_step(self, step: int, epoch_ends: bool) -> bool:
        every = self.DISTRIBUTED_EVERY if self.context.distributed else 1
        return (step % every == 0 or epoch_ends) and self.requested()

    def _by(self) -> str:
        return self.flag.signal_name or "a signal"

    def _continue(self) -> str:
        return (f"saved {self.folder / rundir.LAST}; continue with: mnc train --resume "
                f"{self.folder}")

    def inside_epoch(self, epoch: int, step_in_epoch: int, steps: int) -> TrainingInterrupted:
        """The error for a stop after step ``step_in_epoch`` of 0-based ``epoch``."""
        return TrainingInterrupted(f"stopped by {self._by()} at epoch {epoch + 1} step "
                                   f"{step_in_epoch}/{steps}; {self._continue()}",
                                   self.flag.signal_name)

    def after_epoch(self, finished: int) -> TrainingInterrupted:
        """The error for a stop once ``finished`` epochs are done."""
        return TrainingInterrupted(f"stopped by {self._by()} after epoch {finished}; "
                                   f"{self._continue()}", self.flag.signal_name)
