"""Samplers and data loaders: sharded over DDP ranks, resumable mid-epoch, fast on a GPU."""

from __future__ import annotations

import math
import signal
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from mnc_backends.torch.training.transforms import sample_seed


class ResumableDistributedSampler(DistributedSampler):
    """DistributedSampler whose items carry their augmentation seed and can skip a prefix.

    The epoch's order is DistributedSampler's (a permutation seeded by seed + epoch, padded to
    split evenly over the ranks); each item is ``(index, sample_seed(seed, epoch, index))``.
    ``start_at(n)`` skips the first ``n`` items of this rank, once, to resume inside an epoch.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=False)
        self._skip = 0

    def start_at(self, items: int) -> None:
        self._skip = items

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        skip, self._skip = self._skip, 0
        for position, index in enumerate(super().__iter__()):
            if position >= skip:
                yield index, sample_seed(self.seed, self.epoch, index)


class ShardSampler(Sampler[int]):
    """Evaluation: every item exactly once over all ranks (no padding, so counts are exact)."""

    def __init__(self, length: int, num_replicas: int, rank: int):
        self.indices = range(rank, length, num_replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def steps_per_epoch(sampler: ResumableDistributedSampler, batch_size: int,
                    cap: int | None) -> int:
    steps = math.ceil(sampler.num_samples / batch_size)
    return min(steps, cap) if cap else steps


def _ignore_stop_signals(_worker_id: int) -> None:
    """Workers leave SIGINT/SIGTERM to the main process, which stops them after it saves.

    A Ctrl-C reaches the whole process group; without this the workers would die at once and
    the main process could not finish the step it is checkpointing. Workers still exit when
    their parent dies (PyTorch watches the parent), so a kill -9 leaves no orphans.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(dataset: Dataset, sampler: Sampler, batch_size: int, workers: int,
                pin_memory: bool, prefetch_factor: int) -> DataLoader:
    """Worker processes, pinned memory and prefetching so the accelerator is not left waiting."""
    parallel = workers > 0
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=pin_memory, drop_last=False, persistent_workers=parallel,
                      prefetch_factor=prefetch_factor if parallel else None,
                      worker_init_fn=_ignore_stop_signals if parallel else None)


def default_workers(requested: int | None, device: torch.device, world_size: int,
                    data_format: str) -> int:
    if requested is not None:
        return requested
    if device.type == "cpu" and data_format in ("digits", "dataset"):
        # in memory and small (a user's Dataset may not even pickle): worker start-up would
        # cost more than it saves
        return 0
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, (cpus or 1) // max(1, world_size) - 1))
