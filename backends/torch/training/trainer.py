"""The training loop: epochs of SGD, validation, checkpoints, exact resume, DDP, signals.

``train(...)`` is what ``mnc train`` calls. One process trains on one device; under torchrun
every process runs the same function and DistributedDataParallel averages the gradients. The
data order and every augmentation are functions of (seed, epoch, sample index), and checkpoints
hold the model, optimizer, scheduler, gradient scaler and random states, so a run resumed from
any checkpoint (end of epoch, every N steps, or written on SIGINT/SIGTERM) continues exactly as
if it had not stopped.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnc.analysis.limits import check_memory
from mnc.errors import MncError, StoppedByRequest, UserFileError
from mnc.ir.model import IR
from mnc.ir.serialize import ir_to_json
from mnc_backends.torch.global_state import preserved_global_state
from mnc_backends.torch.training import (
    checkpoint,
    distributed,
    keep,
    loaders,
    progress,
    rundir,
)
from mnc_backends.torch.training.config import (
    TrainConfig,
    apply_resume_overrides,
    build_config,
    config_from_plain,
    load_config_file,
)
from mnc_backends.torch.training.data import build_splits, default_augmentation
from mnc_backends.torch.training.datasets import drop_unreadable
from mnc_backends.torch.training.evaluation import evaluate_loader
from mnc_backends.torch.training.model import (
    build_model,
    fingerprint,
    ir_of,
    load_state,
    unwrap,
)
from mnc_backends.torch.training.transforms import normalize_batch


class TrainingInterrupted(StoppedByRequest):
    """SIGINT or SIGTERM stopped the run after it saved a checkpoint to resume from."""


@dataclass
class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop finishes its step, saves, and stops."""

    signal_name: str | None = None
    previous: dict[signal.Signals, Any] = field(default_factory=dict)

    def _handle(self, number: int, _frame: Any) -> None:
        if self.signal_name is not None and number == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now (last.pt is still complete)
        self.signal_name = signal.Signals(number).name

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopFlag]:
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self._handle)
        try:
            yield self
        finally:
            for number, handler in self.previous.items():
                signal.signal(number, handler)


def lr_factor(config: TrainConfig, epoch: int) -> float:
    """Multiplier of ``lr`` during ``epoch`` (0-based): warm-up, then the schedule."""
    if epoch < config.warmup_epochs:
        return 0.1 + 0.9 * epoch / config.warmup_epochs
    after = epoch - config.warmup_epochs
    if config.schedule == "step":
        return config.lr_gamma ** (after // config.lr_step_epochs)
    if config.schedule == "cosine":
        span = max(1, config.epochs - config.warmup_epochs)
        return 0.5 * (1 + math.cos(math.pi * min(after, span) / span))
    return 1.0


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


@dataclass
class _Run:
    """Everything the loop carries between steps (and what a checkpoint stores)."""

    epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0
    best_top1: float = -1.0
    history: list[dict[str, Any]] = field(default_factory=list)
    partial: dict[str, float] = field(default_factory=lambda: {
        "loss_sum": 0.0, "correct": 0.0, "seen": 0.0, "seconds": 0.0, "skipped": 0.0})


def train(spec: str | Path | None, output: str | Path | None, *,
          config_file: str | Path | None = None, overrides: dict[str, Any] | None = None,
          resume: str | Path | None = None, force: bool = False,
          announce: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the network a spec compiles to; return the final metrics and the run folder.

    ``overrides`` are command-line values (``None`` means not given). With ``resume`` the run
    continues from ``<resume>/last.pt``, with its stored config (only a few fields, such as
    ``epochs``, may change). ``announce`` receives (on the main process) a line saying what
    the run does and, when resuming, one saying where it resumes. The global random
    generators and torch's determinism switches are the caller's again on return.
    """
    overrides = dict(overrides or {})
    file_values = load_config_file(config_file) if config_file else {}
    stored: dict[str, Any] | None = None
    if resume is not None:
        folder = Path(resume)
        if output is not None and Path(output).resolve() != folder.resolve():
            raise UserFileError(f"--resume {resume} and -o {output} name different folders; a "
                                f"resumed run keeps writing to the folder it resumes")
        rundir.prepare(folder, resume=True, force=False)
        stored = checkpoint.load_checkpoint(folder / rundir.LAST)
        config = apply_resume_overrides(
            config_from_plain(stored["config"], str(folder / rundir.LAST)),
            {**file_values, **overrides}, str(folder / rundir.LAST))
    else:
        if output is None:
            raise UserFileError("give the run folder with -o/--output (or --resume a run)")
        if spec is None:
            raise UserFileError("give the spec to train (or --resume a run)")
        folder = Path(output)
        config = build_config(file_values, overrides)
    rundir.check_inputs(folder, _input_files(spec, config_file))

    context = distributed.setup(config.device)
    try:
        if announce is not None and context.is_main:
            announce(progress.start_line(spec, folder, config, context.device,
                                         context.world_size))
            if stored is not None:
                announce(progress.resume_line(folder / rundir.LAST, stored, config.epochs))
        with preserved_global_state():
            return _train(spec, folder, config, stored, force, context)
    finally:
        rundir.unlock(folder)
        distributed.teardown()


def _input_files(spec: str | Path | None, config_file: str | Path | None) -> list[Path]:
    """The files this run reads from the user: the config, the spec and the bases it extends."""
    from mnc.spec.loader import read_merged

    files = [Path(config_file)] if config_file else []
    return files + list(read_merged(spec)[2] if spec is not None else ())


def _compile_ir(spec: str | Path | None, stored: dict[str, Any] | None, origin: Path) -> IR:
    import mnc

    if stored is None:
        return mnc.compile_ir(spec)
    ir = ir_of(stored, str(origin))
    if spec is not None:
        given = mnc.compile_ir(spec)
        if given.content_hash != ir.content_hash:
            raise UserFileError(f"{spec} compiles to network {given.short_hash} but {origin} "
                                f"was trained on {ir.short_hash}; resume with the same spec "
                                f"(or leave the spec out)")
    return ir


def _train(spec: str | Path | None, folder: Path, config: TrainConfig,
           stored: dict[str, Any] | None, force: bool,
           context: distributed.Context) -> dict[str, Any]:
    error: MncError | None = None
    if context.is_main:  # the main process alone writes to the run folder, under its lock
        try:
            rundir.lock(folder)
            if stored is None:
                kept = rundir.prepare(folder, resume=False, force=force)
                if kept:
                    print(f"mnc train: --force left {len(kept)} file(s) in {folder} that no "
                          f"record says mnc wrote: {', '.join(kept[:8])}"
                          f"{' ...' if len(kept) > 8 else ''}", file=sys.stderr)
        except MncError as caught:
            error = caught
    _agree(error, context)
    _seed_everything(config.seed, config.deterministic)
    ir = _compile_ir(spec, stored, folder / rundir.LAST)
    size = (ir.input.height, ir.input.width)
    splits = build_splits(config, size, ir.input.channels, ir.readout.classes)
    config = _resolve(config, context.device, context.world_size, splits.format)
    per_rank_batch = _per_rank_batch(config, context.world_size)
    check_memory(ir, "train", batch=min(per_rank_batch, len(splits.train or [])),
                 origin=str(folder / rundir.LAST) if stored is not None else str(spec))

    model = build_model(ir, config.strategy).to(context.device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if config.sync_batchnorm and context.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay, nesterov=config.nesterov)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: lr_factor(config, epoch))
    use_scaler = bool(config.amp) and config.amp_dtype == "float16" and \
        context.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)

    run = _Run()
    if stored is not None:
        origin = str(folder / rundir.LAST)
        load_state(model, stored["state_dict"], origin)
        optimizer.load_state_dict(stored["optimizer"])
        scheduler.load_state_dict(stored["scheduler"])
        if stored.get("scaler"):
            scaler.load_state_dict(stored["scaler"])
        checkpoint.set_rng_state(stored["rng"])
        run = _Run(epoch=int(stored["epoch"]), step=int(stored["step"]),
                   step_in_epoch=int(stored.get("step_in_epoch", 0)),
                   best_top1=float(stored.get("best_top1", -1.0)),
                   history=list(stored["metrics"]),
                   partial=dict(stored.get("partial") or _Run().partial))
        if not context.is_main:  # rank 0 alone carries the partial sums of all ranks
            run.partial = _Run().partial
    if context.is_main:
        spec_files = [Path(name) for name in ir.provenance.spec_files] if stored is None else []
        if stored is None:
            rundir.record(folder, config.model_dump(mode="json"), ir, spec_files,
                          context.world_size)
        else:
            rundir.write_config(folder, config.model_dump(mode="json"))
        rundir.write_metrics(folder, run.history)

    trained = model
    if context.distributed:
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    sampler = loaders.ResumableDistributedSampler(splits.train, context.world_size,
                                                  context.rank, config.seed)
    pin = context.device.type == "cuda"
    train_loader = loaders.make_loader(splits.train, sampler, per_rank_batch, config.workers or 0,
                                       pin, config.prefetch_factor)
    val_loader = loaders.make_loader(
        splits.val, loaders.ShardSampler(len(splits.val), context.world_size, context.rank),
        per_rank_batch, config.workers or 0, pin, config.prefetch_factor)
    steps = loaders.steps_per_epoch(sampler, per_rank_batch, config.max_steps_per_epoch)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    amp_dtype = torch.bfloat16 if config.amp_dtype == "bfloat16" else torch.float16
    schedule = keep.parse_schedule(config.keep_checkpoints)
    if schedule.keeps(0) and run.step == 0:
        # Epoch 0 is the untrained network; its validation must not shift the random streams,
        # so a run with kept checkpoints trains exactly as one without.
        state = checkpoint.rng_state()
        untrained = evaluate_loader(trained, val_loader, context, config, amp_dtype)
        checkpoint.set_rng_state(state)
        if context.is_main:
            keep.keep_model(folder, unwrap(model), epoch=0, step=0, val=untrained,
                            config=config.model_dump(mode="json"))
        distributed.barrier(context)

    def payload() -> dict[str, Any]:
        return {"content_hash": ir.content_hash, "ir_json": ir_to_json(ir),
                "state_dict": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if use_scaler else {},
                "rng": checkpoint.rng_state(), "epoch": run.epoch, "step": run.step,
                "step_in_epoch": run.step_in_epoch, "partial": dict(run.partial),
                "best_top1": run.best_top1, "config": config.model_dump(mode="json"),
                "metrics": list(run.history), "world_size": context.world_size}

    def save_mid_epoch(sums: torch.Tensor, seconds: float) -> None:
        totals = distributed.all_reduce_sum(sums.clone(), context).tolist()
        if context.is_main:
            snapshot = dict(run.partial)
            run.partial = {"loss_sum": snapshot["loss_sum"] + totals[0],
                           "correct": snapshot["correct"] + totals[1],
                           "seen": snapshot["seen"] + totals[2],
                           "seconds": snapshot["seconds"] + seconds,
                           "skipped": snapshot.get("skipped", 0.0) + totals[3]}
            checkpoint.save_checkpoint(folder / rundir.LAST, payload())
            run.partial = snapshot
        distributed.barrier(context)

    stop = _StopFlag()
    check_every = 10 if context.distributed else 1
    with stop.installed():
        while run.epoch < config.epochs:
            epoch = run.epoch
            sampler.set_epoch(epoch)
            sampler.start_at(run.step_in_epoch * per_rank_batch)
            trained.train()
            sums = torch.zeros(4, device=context.device, dtype=torch.float64)  # + unreadable
            started = time.perf_counter()
            bar = progress.bar(steps * config.batch_size, f"epoch {epoch + 1}/{config.epochs}",
                               config.progress if context.is_main else False,
                               initial=run.step_in_epoch * config.batch_size)
            batches = iter(train_loader)
            waited = 0.0  # time spent waiting for data: near zero when loading keeps up
            while run.step_in_epoch < steps:
                before = time.perf_counter()
                images, labels = next(batches)
                waited += time.perf_counter() - before
                images, labels, unreadable = drop_unreadable(images, labels)
                if unreadable:
                    sums[3] += unreadable
                if not labels.numel():  # every image of the batch was unreadable: no step
                    run.step += 1
                    run.step_in_epoch += 1
                    continue
                images = normalize_batch(images.to(context.device, non_blocking=True),
                                         config.mean, config.std, bool(config.channels_last))
                labels = labels.to(context.device, non_blocking=True)
                with torch.autocast(context.device.type, dtype=amp_dtype,
                                    enabled=bool(config.amp)):
                    logits = trained(images)
                    loss = criterion(logits, labels)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip_norm is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
                scaler.step(optimizer)
                scaler.update()
                count = labels.shape[0]
                with torch.no_grad():
                    sums[:3] += torch.stack([loss.detach().double() * count,
                                         (logits.argmax(1) == labels).sum().double(),
                                         torch.tensor(float(count), device=context.device,
                                                      dtype=torch.float64)])
                run.step += 1
                run.step_in_epoch += 1
                bar.update(count * context.world_size)
                if run.step_in_epoch % 20 == 0 and bar.disable is False:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
                stopping = (run.step % check_every == 0 or run.step_in_epoch == steps) and \
                    distributed.any_rank(stop.signal_name is not None, context)
                every = config.checkpoint_every_steps
                if stopping or (every and run.step % every == 0 and run.step_in_epoch < steps):
                    if run.step_in_epoch < steps:
                        save_mid_epoch(sums, time.perf_counter() - started)
                    if stopping and run.step_in_epoch < steps:
                        bar.close()
                        raise TrainingInterrupted(
                            f"stopped by {stop.signal_name or 'a signal'} at epoch {epoch + 1} "
                            f"step {run.step_in_epoch}/{steps}; saved {folder / rundir.LAST}; "
                            f"continue with: mnc train --resume {folder}", stop.signal_name)
            bar.close()
            train_seconds = time.perf_counter() - started
            wait_fraction = waited / max(train_seconds, 1e-9)
            totals = distributed.all_reduce_sum(sums, context).tolist()
            loss_sum = totals[0] + run.partial["loss_sum"]
            correct = totals[1] + run.partial["correct"]
            seen = totals[2] + run.partial["seen"]
            train_seconds += run.partial["seconds"]
            skipped = totals[3] + run.partial.get("skipped", 0.0)
            val = evaluate_loader(trained, val_loader, context, config, amp_dtype)
            entry = {"epoch": epoch + 1, "step": run.step,
                     "lr": optimizer.param_groups[0]["lr"],
                     "train_loss": loss_sum / max(seen, 1), "train_top1": correct / max(seen, 1),
                     "train_images": int(seen), "train_images_per_s": seen / train_seconds,
                     "train_skipped_images": int(skipped),
                     "data_wait_fraction": wait_fraction,
                     "epoch_seconds": time.perf_counter() - started + run.partial["seconds"],
                     **{f"val_{key}": value for key, value in val.items()}}
            scheduler.step()
            run.epoch += 1
            run.step_in_epoch = 0
            run.partial = _Run().partial
            run.history.append(entry)
            improved = entry["val_top1"] > run.best_top1
            if improved:
                run.best_top1 = entry["val_top1"]
            if context.is_main:
                content = payload()
                checkpoint.save_checkpoint(folder / rundir.LAST, content)
                if improved:
                    checkpoint.save_checkpoint(folder / rundir.BEST, content)
                if schedule.keeps(run.epoch):
                    keep.keep_model(folder, unwrap(model), epoch=run.epoch, step=run.step,
                                    val=val, config=config.model_dump(mode="json"))
                rundir.write_metrics(folder, run.history)
                print(progress.epoch_line(entry), file=sys.stderr, flush=True)
            distributed.barrier(context)
            if distributed.any_rank(stop.signal_name is not None, context) and \
                    run.epoch < config.epochs:
                raise TrainingInterrupted(
                    f"stopped by {stop.signal_name or 'a signal'} after epoch {run.epoch}; saved "
                    f"{folder / rundir.LAST}; continue with: mnc train --resume {folder}",
                    stop.signal_name)
    final = run.history[-1] if run.history else {}
    fingerprints = distributed.gather_strings(fingerprint(model), context)
    if len(set(fingerprints)) > 1 and context.is_main:
        print(f"warning: the {context.world_size} processes ended with different weights "
              f"(fingerprints {', '.join(item[:12] for item in fingerprints)})",
              file=sys.stderr)
    return {"run": str(folder), "epochs": run.epoch, "steps": run.step,
            "rank_fingerprints": fingerprints,
            "best_val_top1": run.best_top1, "final": final,
            "config": config.model_dump(mode="json"), "content_hash": ir.content_hash}
