"""torch.distributed set-up from the environment torchrun provides (no launcher of our own).

A plain ``mnc train`` is a world of one. Under ``torchrun`` the variables RANK, WORLD_SIZE and
LOCAL_RANK are set; the process group uses NCCL on CUDA and gloo on CPU. Only rank 0 logs and
writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mnc.errors import UserFileError


@dataclass(frozen=True)
class Context:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise UserFileError(f"--device {requested!r}: expected auto, cpu, cuda or cuda:N"
                            ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserFileError(f"--device {requested}: CUDA is not available on this machine")
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise UserFileError(f"--device {requested!r}: expected auto, cpu, cuda or cuda:N")
    return device


def setup(requested_device: str) -> Context:
    """Join the process group torchrun describes (if any) and choose this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=device if device.type == "cuda" else None)
    return Context(rank, world_size, local_rank, device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, context: Context) -> torch.Tensor:
    """Sum a tensor over every rank (a no-op in a world of one)."""
    if context.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def any_rank(flag: bool, context: Context) -> bool:
    """True on every rank if ``flag`` is true on any: all ranks stop at the same step."""
    if not context.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def gather_strings(value: str, context: Context) -> list[str]:
    """One string from every rank, in rank order (for cross-rank consistency checks)."""
    if not context.distributed:
        return [value]
    gathered: list[object] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return [str(item) for item in gathered]
