"""Where a run's checkpoints go and when: ``last.pt``, ``best.pt``, kept epochs, resume.

``RunCheckpoints`` writes through ``checkpoint`` (atomic, weights-only readable) into the run
folder. Rank 0 alone writes; every rank takes part in the sums a checkpoint inside an epoch
needs, and waits at a barrier until the file is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mnc.ir.model import IR
from mnc.ir.serialize import ir_to_json
from mnc_backends.torch.training import checkpoint, distributed, keep, rundir
from mnc_backends.torch.training.config import TrainConfig
from mnc_backends.torch.training.model import unwrap
from mnc_backends.torch.training.state import TrainingState
from mnc_backends.torch.weights_io import save_model


def read_last(folder: Path) -> dict[str, Any]:
    """The checkpoint a resumed run continues from (a clear error if it is not one)."""
    return checkpoint.load_checkpoint(folder / rundir.LAST)


@dataclass
class RunCheckpoints:
    """The checkpoints of one run of ``ir`` with ``config`` in ``folder``."""

    folder: Path
    ir: IR
    config: TrainConfig
    context: distributed.Context
    class_names: tuple[str, ...] | None = None
    """Names of the readout's classes (the training data's), recorded in every checkpoint."""
    schedule: keep.KeepSchedule = field(init=False)
    _ir_json: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.schedule = keep.parse_schedule(self.config.keep_checkpoints)
        self._ir_json = ir_to_json(self.ir)

    @property
    def last(self) -> Path:
        return self.folder / rundir.LAST

    def payload(self, state: TrainingState) -> dict[str, Any]:
        """The whole checkpoint of ``state``: the IR, the training state, config, world size."""
        names = {"class_names": list(self.class_names)} if self.class_names else {}
        return {"content_hash": self.ir.content_hash, "ir_json": self._ir_json,
                **state.state_dict(), "config": self.config.model_dump(mode="json"),
                "world_size": self.context.world_size, **names}

    def resume(self, state: TrainingState, stored: dict[str, Any]) -> None:
        """Continue from ``stored`` (read from ``last.pt``)."""
        state.load_state_dict(stored, str(self.last), with_partial=self.context.is_main)

    def record_start(self, state: TrainingState, resumed: bool) -> None:
        """Rank 0: the run's records (config, IR, spec copies; only the config on resume)."""
        if not self.context.is_main:
            return
        config = self.config.model_dump(mode="json")
        if resumed:
            rundir.write_config(self.folder, config)
        else:
            spec_files = [Path(name) for name in self.ir.provenance.spec_files]
            rundir.record(self.folder, config, self.ir, spec_files, self.context.world_size)
        rundir.write_metrics(self.folder, state.history)

    def save_inside_epoch(self, state: TrainingState, sums: torch.Tensor,
                          seconds: float) -> None:
        """``last.pt`` in the middle of an epoch: with the epoch's sums over all ranks so far
        (``sums``: this rank's loss x images, correct, images, unreadable)."""
        totals = distributed.all_reduce_sum(sums.clone(), self.context).tolist()
        if self.context.is_main:
            carried = state.partial
            state.partial = state.partial_plus(totals, seconds)
            try:
                checkpoint.save_checkpoint(self.last, self.payload(state))
            finally:
                state.partial = carried
        distributed.barrier(self.context)

    def save_epoch(self, state: TrainingState, improved: bool, val: dict[str, Any]) -> None:
        """Rank 0, after an epoch: the kept checkpoint if the schedule names this epoch (file,
        then index), then ``last.pt``, ``best.pt`` and ``best.safetensors`` if validation
        improved, ``metrics.jsonl``.

        The kept checkpoint comes first so that a kill at any point leaves ``last.pt`` before
        this epoch (the epoch is trained again on resume) or the kept entry complete."""
        if not self.context.is_main:
            return
        if self.schedule.keeps(state.epoch):
            self.keep(state, val)
        content = self.payload(state)
        checkpoint.save_checkpoint(self.last, content)
        if improved:
            checkpoint.save_checkpoint(self.folder / rundir.BEST, content)
            # the same network's weights alone, as the rest of the ecosystem reads them
            save_model(unwrap(state.model), self.folder / rundir.BEST_WEIGHTS)
        rundir.write_metrics(self.folder, state.history)

    def repair_kept(self, state: TrainingState) -> list[str]:
        """Rank 0, on resume: scheduled epochs missing from ``checkpoints.json`` (a run of an
        earlier version killed between ``last.pt`` and its kept checkpoint). The epoch
        ``last.pt`` ends is kept again from it; earlier gaps cannot be recreated and are
        reported. Returns the lines saying what was done."""
        if not self.context.is_main or not self.schedule:
            return []
        present = keep.kept_epochs(self.folder)
        missing = [epoch for epoch in range(state.epoch + 1)
                   if self.schedule.keeps(epoch) and epoch not in present]
        lines = []
        history = state.history[-1] if state.history else {}
        if (missing and missing[-1] == state.epoch and state.step_in_epoch == 0
                and state.epoch > 0 and "val_top1" in history):
            self.keep(state, {"top1": history["val_top1"], "top5": history.get("val_top5",
                                                                              float("nan"))})
            lines.append(f"{self.folder}: kept checkpoint of epoch {state.epoch} was missing "
                         f"from checkpoints.json; written again from {rundir.LAST}")
            missing.pop()
        if missing:
            lines.append(f"{self.folder}: checkpoints.json lacks scheduled epoch(s) "
                         f"{', '.join(map(str, missing))} (a run interrupted while keeping "
                         "them); they cannot be recreated, the comparison skips them")
        return lines

    def keeps_untrained(self, state: TrainingState) -> bool:
        """Whether epoch 0 is to be kept (and the run has not taken a step yet)."""
        return self.schedule.keeps(0) and state.step == 0

    def keep(self, state: TrainingState, val: dict[str, Any]) -> None:
        """Rank 0: the network as it is now, kept as epoch ``state.epoch``."""
        if self.context.is_main:
            keep.keep_model(self.folder, unwrap(state.model), epoch=state.epoch,
                            step=state.step, val=val, config=self.config.model_dump(mode="json"))
