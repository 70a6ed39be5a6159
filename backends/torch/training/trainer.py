"""The training loop: epochs of SGD, validation, checkpoints, exact resume, DDP, signals.

``train(...)`` is what ``mnc train`` calls. One process trains on one device; under torchrun
every process runs the same function and DistributedDataParallel averages the gradients. The
data order and every augmentation are functions of (seed, epoch, sample index), and checkpoints
hold the model, optimizer, scheduler, gradient scaler and random states, so a run resumed from
any checkpoint (end of epoch, every N steps, or written on SIGINT/SIGTERM) continues exactly as
if it had not stopped.

This module sets a run up and drives it; the parts live in their own modules: ``state``
(what a checkpoint holds), ``epoch`` (``train_one_epoch``), ``validation``, ``checkpointing``
(``last.pt``, ``best.pt``, kept epochs, resume) and ``stopping`` (signals).
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnc.analysis.limits import check_memory
from mnc.errors import MncError, UsageError, UserFileError
from mnc.ir.model import IR
from mnc.text import shown_message
from mnc_backends.torch.global_state import preserved_global_state
from mnc_backends.torch.training import distributed, loaders, progress, rundir
from mnc_backends.torch.training.checkpointing import RunCheckpoints, read_last
from mnc_backends.torch.training.config import (
    TrainConfig,
    apply_resume_overrides,
    build_config,
    config_from_plain,
    load_config_file,
)
from mnc_backends.torch.training.data import (
    DIGITS,
    DataSplits,
    build_splits,
    check_data,
    default_augmentation,
)
from mnc_backends.torch.training.epoch import (
    EpochSums,
    StepParts,
    epoch_record,
    train_one_epoch,
)
from mnc_backends.torch.training.model import fingerprint, ir_of, load_state
from mnc_backends.torch.training.state import TrainingState, lr_factor
from mnc_backends.torch.training.stopping import StopCheck, StopFlag, TrainingInterrupted
from mnc_backends.torch.training.validation import validate, validate_untrained

__all__ = ["TrainingInterrupted", "lr_factor", "train"]


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def _resolve(config: TrainConfig, device: torch.device, world_size: int,
             data_format: str) -> TrainConfig:
    """Fill every field left to ``None`` so the run directory records what was used."""
    config = default_augmentation(config, data_format)
    on_cuda = device.type == "cuda"
    return config.model_copy(update={
        "amp": on_cuda if config.amp is None else config.amp,
        "channels_last": on_cuda if config.channels_last is None else config.channels_last,
        "workers": loaders.default_workers(config.workers, device, world_size, data_format),
        "format": data_format,
    })


def _agree(error: MncError | None, context: distributed.Context) -> None:
    """Raise on every rank if any rank failed a check (instead of leaving the others waiting)."""
    failed = distributed.any_rank(error is not None, context)
    if error is not None:
        raise error
    if failed:
        raise UserFileError("another process of this run failed its checks (see rank 0)")


def _per_rank_batch(config: TrainConfig, world_size: int) -> int:
    if config.batch_size % world_size:
        raise UserFileError(f"--batch-size {config.batch_size} is the global batch; it must be "
                            f"divisible by the {world_size} processes")
    return config.batch_size // world_size


def train(spec: str | Path | IR | None, output: str | Path | None, *,
          config_file: str | Path | None = None, overrides: dict[str, Any] | None = None,
          resume: str | Path | None = None, force: bool = False,
          announce: Callable[[str], None] | None = None, data: DataSplits | None = None,
          initial_weights: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Train the network a spec (or an IR) compiles to; return the final metrics and the run
    folder.

    ``data``: data sets built by the caller (``mnc.train`` on a user's Dataset) instead of the
    one ``config.data`` names; ``initial_weights``: a state dict to start from instead of
    fresh weights.

    ``overrides`` are command-line values (``None`` means not given). With ``resume`` the run
    continues from ``<resume>/last.pt``, with its stored config (only a few fields, such as
    ``epochs``, may change). ``announce`` receives (on the main process) a line saying what
    the run does and, when resuming, one saying where it resumes. The global random
    generators and torch's determinism switches are the caller's again on return.
    """
    overrides = dict(overrides or {})
    file_values = load_config_file(config_file) if config_file else {}
    folder, config, stored = _folder_and_config(spec, output, resume, file_values, overrides)
    rundir.check_inputs(folder, _input_files(spec, config_file))
    if data is None:
        check_data(config, "mnc train")  # before the run folder or its lock is made

    context = distributed.setup(config.device)
    try:
        if announce is not None and context.is_main:
            given = {**file_values, **{key: value for key, value in overrides.items()
                                       if value is not None}}
            _announce(announce, spec, folder, config, context, stored, given)
        with preserved_global_state():
            return _train(spec, folder, config, stored, force, context, data,
                          initial_weights)
    finally:
        rundir.unlock(folder)
        distributed.teardown()


def _folder_and_config(spec: str | Path | IR | None, output: str | Path | None,
                       resume: str | Path | None, file_values: dict[str, Any],
                       overrides: dict[str, Any]
                       ) -> tuple[Path, TrainConfig, dict[str, Any] | None]:
    """The run folder, the config (the file's values, then the command line's) and, when
    resuming, the stored ``last.pt`` record."""
    if resume is None:
        if output is None:
            raise UserFileError("give the run folder with -o/--output (or --resume a run)")
        if spec is None:
            raise UserFileError("give the spec to train (or --resume a run)")
        return Path(output), build_config(file_values, overrides), None
    folder = Path(resume)
    if output is not None and Path(output).resolve() != folder.resolve():
        raise UserFileError(f"--resume {resume} and -o {output} name different folders; a "
                            f"resumed run keeps writing to the folder it resumes")
    rundir.prepare(folder, resume=True, force=False)
    stored = read_last(folder)
    config = apply_resume_overrides(
        config_from_plain(stored["config"], str(folder / rundir.LAST)),
        {**file_values, **overrides}, str(folder / rundir.LAST))
    return folder, config, stored


def _announce(announce: Callable[[str], None], spec: str | Path | IR | None, folder: Path,
              config: TrainConfig, context: distributed.Context,
              stored: dict[str, Any] | None, given: dict[str, Any]) -> None:
    """What the run does; where it resumes, or a hint that the digits need more epochs
    (``given``: the values the user set)."""
    announce(progress.start_line(spec.name if isinstance(spec, IR) else spec, folder,
                                 config, context.device, context.world_size))
    if stored is not None:
        announce(progress.resume_line(folder / rundir.LAST, stored, config.epochs))
    elif config.data == DIGITS and "epochs" not in given:
        announce(progress.small_data_hint(config))


def _input_files(spec: str | Path | IR | None,
                 config_file: str | Path | None) -> list[Path]:
    """The files this run reads from the user: the config, the spec and the bases it extends."""
    from mnc.spec.loader import read_merged

    files = [Path(config_file)] if config_file else []
    if isinstance(spec, IR):
        return files + [Path(name) for name in spec.provenance.spec_files]
    return files + list(read_merged(spec)[2] if spec is not None else ())


def _compile_ir(spec: str | Path | IR | None, stored: dict[str, Any] | None,
                origin: Path) -> IR:
    from mnc.compiler import compile_ir

    if stored is None:
        if isinstance(spec, IR):
            return spec
        if spec is None:
            raise UsageError("give a spec to train, or --resume a run folder")
        return compile_ir(spec)
    ir = ir_of(stored, str(origin))
    if spec is not None:
        given = spec if isinstance(spec, IR) else compile_ir(spec)
        if given.content_hash != ir.content_hash:
            raise UserFileError(f"{spec} compiles to network {given.short_hash} but {origin} "
                                f"was trained on {ir.short_hash}; resume with the same spec "
                                f"(or leave the spec out)")
    return ir


def _prepare_folder(folder: Path, resumed: bool, force: bool,
                    context: distributed.Context) -> None:
    """Rank 0 locks the run folder (and, for a new run, clears it under ``force``)."""
    error: MncError | None = None
    if context.is_main:  # the main process alone writes to the run folder, under its lock
        try:
            rundir.lock(folder)
            kept = [] if resumed else rundir.prepare(folder, resume=False, force=force)
            if kept:
                print(f"mnc train: --force left {len(kept)} file(s) in {folder} that no "
                      f"record says mnc wrote: {', '.join(kept[:8])}"
                      f"{' ...' if len(kept) > 8 else ''}", file=sys.stderr)
        except MncError as caught:
            error = caught
    _agree(error, context)


def _train(spec: str | Path | IR | None, folder: Path, config: TrainConfig,
           stored: dict[str, Any] | None, force: bool, context: distributed.Context,
           data: DataSplits | None = None,
           initial_weights: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    _prepare_folder(folder, stored is not None, force, context)
    _seed_everything(config.seed, config.deterministic)
    ir = _compile_ir(spec, stored, folder / rundir.LAST)
    size = (ir.input.height, ir.input.width)
    splits = data or build_splits(config, size, ir.input.channels, ir.readout.classes)
    config = _resolve(config, context.device, context.world_size, splits.format)
    per_rank_batch = _per_rank_batch(config, context.world_size)
    check_memory(ir, "train", batch=min(per_rank_batch, len(splits.train or [])),
                 origin=str(folder / rundir.LAST) if stored is not None else ir.name)

    state = TrainingState.create(ir, config, context)
    if initial_weights is not None:
        load_state(state.model, initial_weights, "the model given to train")
    checkpoints = RunCheckpoints(folder, ir, config, context, splits.names)
    if stored is not None:
        checkpoints.resume(state, stored)
        for line in checkpoints.repair_kept(state):
            print(shown_message(line), file=sys.stderr, flush=True)
    checkpoints.record_start(state, resumed=stored is not None)
    _Loop.build(state, checkpoints, splits, per_rank_batch).run()
    return _summary(state, checkpoints)


def _parallel(model: torch.nn.Module, context: distributed.Context) -> torch.nn.Module:
    """The module the steps call: under DDP a wrapper that averages gradients over ranks."""
    if not context.distributed:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


@dataclass
class _Loop:
    """Epochs until ``config.epochs``: train, validate, checkpoint, stop when asked."""

    state: TrainingState
    checkpoints: RunCheckpoints
    parts: StepParts
    sampler: loaders.ResumableDistributedSampler
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    steps: int
    """Steps per epoch on every rank."""
    stop: StopCheck

    @classmethod
    def build(cls, state: TrainingState, checkpoints: RunCheckpoints, splits: DataSplits,
              per_rank_batch: int) -> _Loop:
        config, context = checkpoints.config, checkpoints.context
        parts = StepParts(_parallel(state.model, context),
                          torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
                          config, context)
        sampler = loaders.ResumableDistributedSampler(splits.train, context.world_size,
                                                      context.rank, config.seed)
        pin = context.device.type == "cuda"
        train_loader = loaders.make_loader(splits.train, sampler, per_rank_batch,
                                           config.workers or 0, pin, config.prefetch_factor)
        val_loader = loaders.make_loader(
            splits.val, loaders.ShardSampler(len(splits.val), context.world_size, context.rank),
            per_rank_batch, config.workers or 0, pin, config.prefetch_factor)
        steps = loaders.steps_per_epoch(sampler, per_rank_batch, config.max_steps_per_epoch)
        return cls(state, checkpoints, parts, sampler, train_loader, val_loader, steps,
                   StopCheck(StopFlag(), context, checkpoints.folder))

    def run(self) -> None:
        if self.checkpoints.keeps_untrained(self.state):
            self.checkpoints.keep(self.state, validate_untrained(self.parts, self.val_loader))
            distributed.barrier(self.parts.context)
        with self.stop.flag.installed():
            while self.state.epoch < self.parts.config.epochs:
                self._epoch()

    def _epoch(self) -> None:
        state, context = self.state, self.parts.context
        sums = train_one_epoch(state, self.parts, self.train_loader, self.sampler, self.steps,
                               self._after_step)
        train_seconds = sums.seconds()
        totals = distributed.all_reduce_sum(sums.values, context).tolist()
        val = validate(self.parts, self.val_loader)
        entry = epoch_record(state, totals, train_seconds, sums, val)
        improved = state.end_epoch(entry)
        self.checkpoints.save_epoch(state, improved, val)
        if context.is_main:
            print(progress.epoch_line(entry, self.parts.config.epochs), file=sys.stderr,
                  flush=True)
        distributed.barrier(context)
        if self.stop.requested() and state.epoch < self.parts.config.epochs:
            raise self.stop.after_epoch(state.epoch)

    def _after_step(self, sums: EpochSums) -> None:
        """Inside an epoch: write ``last.pt`` every N steps, and stop (after saving) if asked."""
        state = self.state
        epoch_ends = state.step_in_epoch == self.steps
        stopping = self.stop.requested_after_step(state.step, epoch_ends)
        every = self.parts.config.checkpoint_every_steps
        if epoch_ends or not (stopping or (every and state.step % every == 0)):
            return  # the end of the epoch saves (and stops) after validation
        self.checkpoints.save_inside_epoch(state, sums.values, sums.seconds())
        if stopping:
            raise self.stop.inside_epoch(state.epoch, state.step_in_epoch, self.steps)


def _summary(state: TrainingState, checkpoints: RunCheckpoints) -> dict[str, Any]:
    """What ``train`` returns; warns if the ranks ended with different weights."""
    context = checkpoints.context
    fingerprints = distributed.gather_strings(fingerprint(state.model), context)
    if len(set(fingerprints)) > 1 and context.is_main:
        print(f"warning: the {context.world_size} processes ended with different weights "
              f"(fingerprints {', '.join(item[:12] for item in fingerprints)})",
              file=sys.stderr)
    return {"run": str(checkpoints.folder), "epochs": state.epoch, "steps": state.step,
            "rank_fingerprints": fingerprints,
            "best_val_top1": state.best_top1,
            "final": state.history[-1] if state.history else {},
            "config": checkpoints.config.model_dump(mode="json"),
            "content_hash": checkpoints.ir.content_hash}
