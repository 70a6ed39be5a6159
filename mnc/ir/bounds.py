"""Bounded field types: the range of every number a spec or an IR may hold, written once.

The spec models (``mnc.spec.models``) and the IR models (``mnc.ir.model``) both annotate
their fields with these types, so a value out of range is refused by pydantic with the path
of the field, whichever file it came from (a spec, IR JSON, a saved model, a checkpoint).
Rules that relate several fields (a delay shorter than the run, grids that fit) live in
``mnc.ir.invariants`` and ``mnc.spec.semantics``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

LARGEST_STEPS = 1000
"""Time steps a network may be unrolled: each step costs a full pass over the network."""
LARGEST_DELAY = LARGEST_STEPS - 1
"""A delay reaches at most from the first step to the last."""
LARGEST_UPSAMPLE = 64
"""Upsampling of a feedback source onto a finer grid (the hierarchy spans far less)."""
LARGEST_KERNEL = 4097
"""The widest kernel the compiler derives (``mnc.passes.size_kernels``): wider is a unit
mistake, not a connection profile."""
LARGEST_SEED = 2**32 - 1
LARGEST_POOL = 256
LARGEST_CLASSES = 10**6
LARGEST_INPUT_CHANNELS = 4096
LARGEST_INPUT_SIDE = 8192


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError(f"kernel size {value} is even; kernels are odd so they have a centre")
    return value


Steps = Annotated[int, Field(ge=1, le=LARGEST_STEPS)]
Delay = Annotated[int, Field(ge=0, le=LARGEST_DELAY)]
Upsample = Annotated[int, Field(ge=1, le=LARGEST_UPSAMPLE)]
KernelSize = Annotated[int, Field(ge=1, le=LARGEST_KERNEL), AfterValidator(_odd)]
Stride = Annotated[int, Field(ge=1, le=LARGEST_KERNEL)]
Count = Annotated[int, Field(ge=1)]
"""Channels and grid sides: at least one; their product is held by the size guard."""
StepIndex = Annotated[int, Field(ge=0, le=LARGEST_DELAY)]
Seed = Annotated[int, Field(ge=0, le=LARGEST_SEED)]
PoolSize = Annotated[int, Field(ge=1, le=LARGEST_POOL)]
Classes = Annotated[int, Field(ge=1, le=LARGEST_CLASSES)]
InputChannels = Annotated[int, Field(ge=1, le=LARGEST_INPUT_CHANNELS)]
InputSide = Annotated[int, Field(ge=1, le=LARGEST_INPUT_SIDE)]
PositiveProbability = Annotated[float, Field(gt=0)]
"""A mask's peak probability: values above 1 act as 1 (the mask is then all ones)."""
PositiveWidth = Annotated[float, Field(gt=0)]
EdgeZ = Annotated[float, Field(gt=0, le=10)]
"""Kernel half-width in standard deviations of the profile."""
PixelsPerDegree = Annotated[float, Field(gt=0, le=1e6)]
