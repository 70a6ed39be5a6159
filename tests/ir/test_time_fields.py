"""The IR's time fields: defaults keep feed-forward hashes, set values change them, and the
invariants allow a projection to run backwards only with a delay."""

from __future__ import annotations

import pytest

import mnc
from mnc.ir import IR, Dynamics
from mnc.ir.invariants import ir_problems


@pytest.fixture(scope="module")
def tiny() -> IR:
    return mnc.compile_ir("tiny")


def _with_lateral(ir: IR, delay: int) -> IR:
    """``ir`` plus a same-grid projection from the last population onto itself."""
    target = ir.populations[-1]
    template = next(q for q in ir.projections if q.stride == 1 and q.upsample == 1)
    padding = (template.kernel_size - 1) // 2
    lateral = template.model_copy(update={
        "source": target.name, "target": target.name, "in_channels": target.channels,
        "out_channels": target.channels, "padding_lrtb": (padding,) * 4, "delay": delay})
    return ir.model_copy(update={"projections": [*ir.projections, lateral]})


def test_default_time_fields_leave_the_hash_alone(tiny: IR) -> None:
    explicit = tiny.model_copy(update={"dynamics": Dynamics(steps=1, input="still")})
    assert explicit.content_hash == tiny.content_hash
    assert not tiny.is_recurrent


def test_steps_and_delays_change_the_hash(tiny: IR) -> None:
    stepped = tiny.model_copy(update={"dynamics": Dynamics(steps=3)})
    lateral = _with_lateral(tiny, delay=1)
    assert stepped.is_recurrent and lateral.is_recurrent
    hashes = {tiny.content_hash, stepped.content_hash, lateral.content_hash,
              _with_lateral(tiny, delay=2).content_hash}
    assert len(hashes) == 4


def test_a_delayed_loop_is_valid_and_an_undelayed_one_is_named(tiny: IR) -> None:
    two_steps = tiny.model_copy(update={"dynamics": Dynamics(steps=2)})
    assert ir_problems(_with_lateral(two_steps, delay=1)) == []
    problems = [str(problem) for problem in ir_problems(_with_lateral(two_steps, delay=0))]
    assert len(problems) == 1 and "delay 0 but does not run forward" in problems[0]


def test_a_delay_must_end_inside_the_run(tiny: IR) -> None:
    """A delay of as many steps as the run has would never reach the target."""
    problems = ir_problems(_with_lateral(tiny, delay=1))
    assert [problem.field for problem in problems] == [f"projections[{len(tiny.projections)}]"
                                                       ".delay"]
    assert "runs 1 step(s)" in problems[0].message


def test_readout_steps_must_lie_inside_the_run(tiny: IR) -> None:
    inside = tiny.model_copy(update={"dynamics": Dynamics(steps=4, readout_steps=(1, 3))})
    assert list(inside.dynamics.readout_range) == [1, 2, 3]
    assert ir_problems(inside) == []
    outside = tiny.model_copy(update={"dynamics": Dynamics(steps=2, readout_steps=(0, 2))})
    assert [problem.field for problem in ir_problems(outside)] == ["dynamics.readout_steps"]
