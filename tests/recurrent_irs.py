"""Small hand-built recurrent IRs for tests, on the tiny network, and what tests of the torch
backend run them with.

- ``with_time``: a feedback projection (a 16x16 area onto 32x32 VISp2/3, upsampled twofold)
  and a lateral loop, run in steps;
- ``with_recurrence``: a lateral loop, feedback onto a finer grid, a delay of two steps and a
  delayed forward projection (``ADDED``), run in steps, still or clip input; a projection
  whose delay the run is too short for is left out (an IR refuses it: it would never arrive);
- ``randomised`` and ``inputs_for``: a torch model whose biases and BatchNorms are nonzero,
  and input of the shape an IR's dynamics take (torch is imported only by these two).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import mnc
from mnc.ir import IR, Dynamics
from mnc.ir.invariants import ir_problems

if TYPE_CHECKING:
    import torch

    from mnc_backends.torch import MouseNet

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


ADDED = {
    # name: (kernel, padding, delay, upsample)
    "VISp2/3->VISp2/3": (3, 1, 1, 1),  # lateral, onto itself
    "VISl2/3->VISp4": (3, 1, 1, 2),  # feedback from 16x16 onto 32x32
    "VISpor5->VISp2/3": (5, 2, 2, 2),  # feedback, two steps late
    "LGNd->VISp5": (3, 1, 1, 1),  # forward, one step late
}


def with_recurrence(ir: IR, steps: int = 3, clip: bool = False,
                    readout_steps: tuple[int, int] | None = (1, 2)) -> IR:
    """``ir`` (the tiny network) plus the projections of ``ADDED``, unrolled ``steps``."""
    template = next(q for q in ir.projections if q.stride == 1 and q.kernel_size > 1)
    added = []
    for name, (kernel, padding, delay, upsample) in ADDED.items():
        if delay >= steps:
            continue
        source, target = (ir.population(end) for end in name.split("->"))
        added.append(template.model_copy(update={
            "source": source.name, "target": target.name, "in_channels": source.channels,
            "out_channels": target.channels, "kernel_size": kernel,
            "padding_lrtb": (padding,) * 4, "delay": delay, "upsample": upsample}))
    dynamics = Dynamics(steps=steps, input="clip" if clip else "still",
                        readout_steps=readout_steps)
    recurrent = ir.model_copy(update={"projections": [*ir.projections, *added],
                                      "dynamics": dynamics})
    assert ir_problems(recurrent) == [], ir_problems(recurrent)
    return recurrent


def randomised(ir: IR, seed: int = 0) -> MouseNet:
    """A model whose biases and BatchNorm parameters and statistics are all nonzero, so an
    absent input and an input of zeros (a bias) differ."""
    import torch

    from mnc_backends.torch import MouseNet

    model = MouseNet(ir)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith((".bias", "running_mean")):
                tensor.copy_(0.3 * torch.randn(tensor.shape, generator=generator))
            elif name.startswith("norms.") and name.endswith((".weight", ".running_var")):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
    return model


def inputs_for(ir: IR, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Random input of the shape the IR's dynamics take: (N, C, H, W) or (N, T, C, H, W)."""
    import torch

    shape = (ir.input.channels, ir.input.height, ir.input.width)
    if ir.dynamics.input == "clip":
        shape = (ir.dynamics.steps, *shape)
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))
