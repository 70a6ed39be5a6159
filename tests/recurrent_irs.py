"""Small recurrent IRs for tests of the tools: the tiny network with a feedback projection
(a 16x16 area onto 32x32 VISp2/3, upsampled twofold) and a lateral loop, run in steps."""

from __future__ import annotations

import mnc
from mnc.ir import IR, Dynamics
from mnc.ir.invariants import ir_problems

FEEDBACK = "VISl2/3->VISp2/3"
LATERAL = "VISp2/3->VISp2/3"


def with_time(ir: IR, steps: int = 3, feedback_delay: int = 1, lateral_delay: int = 2,
              readout_steps: tuple[int, int] | None = None) -> IR:
    """``ir`` (the tiny network) plus a feedback and a lateral projection, unrolled ``steps``."""
    template = ir.projection("VISp4->VISp2/3")
    source, target = ir.population("VISl2/3"), ir.population("VISp2/3")
    feedback = template.model_copy(update={
        "source": source.name, "target": target.name, "in_channels": source.channels,
        "out_channels": target.channels, "kernel_size": 3, "padding_lrtb": (1, 1, 1, 1),
        "stride": 1, "upsample": 2, "delay": feedback_delay})
    lateral = template.model_copy(update={
        "source": target.name, "target": target.name, "in_channels": target.channels,
        "kernel_size": 3, "padding_lrtb": (1, 1, 1, 1), "delay": lateral_delay})
    recurrent = ir.model_copy(update={
        "projections": [*ir.projections, feedback, lateral],
        "dynamics": Dynamics(steps=steps, readout_steps=readout_steps)})
    assert ir_problems(recurrent) == [], ir_problems(recurrent)
    return recurrent


def tiny_recurrent(steps: int = 3, **kwargs: object) -> IR:
    return with_time(mnc.compile_ir("tiny"), steps, **kwargs)  # type: ignore[arg-type]
