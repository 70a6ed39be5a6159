"""The time schedule: the feed-forward plan as its one-step case, absent delayed reads,
releases that never drop what is read later, pruning to what the caller wants, clip frames."""

from __future__ import annotations

import pytest

import mnc
from mnc.errors import UsageError
from mnc.ir import IR
from mnc.ir.graph import ancestors
from mnc.lowering.schedule import INPUT, Schedule, time_schedule
from mnc.spec.shipped import shipped_specs
from tests.recurrent_irs import ADDED, LATERAL, with_recurrence, with_time

SPECS = sorted(shipped_specs())


def _feed_forward_plan(ir: IR, keep: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """The feed-forward rule in words: the kept populations' ancestors in IR order, each from
    its incoming projections, a source dropped after its last reader unless kept."""
    needed = ancestors(ir, keep)
    order = [name for name in ir.population_names() if name in needed and name != INPUT]
    last = {q.source: index for index, name in enumerate(order)
            for q in ir.projections if q.target == name}
    return [(name, [q.name for q in ir.projections if q.target == name],
             sorted(source for source, at in last.items() if at == index and source not in keep))
            for index, name in enumerate(order)]


def _keeps(ir: IR) -> list[list[str]]:
    names = ir.population_names()
    return [list(ir.readout.populations), names, [names[len(names) // 2]], [INPUT],
            [names[-1], names[1]]]


@pytest.mark.parametrize("spec", SPECS)
def test_feed_forward_is_the_one_step_plan(spec: str) -> None:
    ir = mnc.compile_ir(spec)
    if ir.is_recurrent:
        pytest.skip(f"{spec} runs in time")
    for keep in _keeps(ir):
        schedule = time_schedule(ir, keep, [0])
        assert schedule.memory == 0 and schedule.steps == 1
        got = [(c.population, [r.projection for r in c.inputs], [name for name, _ in c.release])
               for c in schedule.computations]
        assert got == _feed_forward_plan(ir, keep)
        assert all(c.step == 0 and not c.absent for c in schedule.computations)
        assert all(r.delay == 0 and r.source_step == 0
                   for c in schedule.computations for r in c.inputs)


@pytest.mark.torch
@pytest.mark.parametrize("spec", SPECS)
def test_feed_forward_equals_the_torch_plan(spec: str) -> None:
    pytest.importorskip("torch")
    from mnc_backends.torch.module import torch_plan
    from mnc_backends.torch.names import population_key, projection_key

    ir = mnc.compile_ir(spec)
    if ir.is_recurrent:
        pytest.skip(f"{spec} runs in time")
    for keep in _keeps(ir):
        schedule = time_schedule(ir, keep)
        plan = torch_plan(ir, schedule)
        assert [((c.population, 0), population_key(c.population),
                 tuple((projection_key(r.source, c.population), (r.source, 0))
                       for r in c.inputs),
                 tuple((name, 0) for name, _ in c.release)) for c in schedule.computations] == \
            [(s.activity, s.norm, s.inputs, s.release) for s in plan]


def simulate(schedule: Schedule) -> set[tuple[str, int]]:
    """Run the schedule on names alone: every read finds its activity alive, every release
    drops an activity that is alive; returns what is alive at the end."""
    alive: set[tuple[str, int]] = set()
    for step in range(schedule.steps):
        alive.add((INPUT, step))
        for computation in schedule.at(step):
            for read in computation.inputs:
                assert (read.source, read.source_step) in alive, (computation, read)
            alive.add((computation.population, computation.step))
            for pair in computation.release:
                assert pair in alive, (computation, pair)
                alive.remove(pair)
    return alive


def check(ir: IR, schedule: Schedule) -> None:
    """Simulates cleanly, keeps what the caller wants, and computes exactly what that needs."""
    kept = {(name, step) for name in schedule.keep for step in schedule.kept_steps}
    alive = simulate(schedule)
    assert kept <= alive
    assert {pair for pair in alive if pair[0] != INPUT} <= kept  # nothing else left behind
    computed = [(c.population, c.step) for c in schedule.computations]
    assert len(set(computed)) == len(computed)
    read = {(r.source, r.source_step) for c in schedule.computations for r in c.inputs}
    for pair in read:  # closed: every read is computed first, or is a frame
        assert pair[0] == INPUT or pair in computed[:computed.index(pair) + 1]
    assert set(computed) <= read | kept  # minimal: everything computed is read or wanted
    assert computed == sorted(computed, key=lambda pair: (
        pair[1], ir.population_names().index(pair[0])))
    for computation in schedule.computations:
        incoming = [q for q in ir.projections if q.target == computation.population]
        assert [r.projection for r in computation.inputs] == \
            [q.name for q in incoming if q.delay <= computation.step]
        assert list(computation.absent) == [q.name for q in incoming
                                            if q.delay > computation.step]
        for r in computation.inputs:
            assert r.source_step == computation.step - r.delay >= 0
    assert schedule.memory == max((r.delay for c in schedule.computations for r in c.inputs),
                                  default=0)


@pytest.fixture(scope="module")
def tiny() -> IR:
    return mnc.compile_ir("tiny")


def test_delayed_reads_are_absent_before_their_first_step(tiny: IR) -> None:
    ir = with_recurrence(tiny, steps=4)
    schedule = time_schedule(ir, ir.population_names(), range(4))
    check(ir, schedule)
    assert schedule.memory == 2 and schedule.readout_steps == (1, 2)
    for name, (_, _, delay, _) in ADDED.items():
        target = name.split("->")[1]
        for computation in schedule.computations:
            if computation.population == target:
                assert (name in computation.absent) == (computation.step < delay)
    assert schedule.at(0)[0].population == ir.population_names()[1]
    assert {c.step for c in schedule.at(3)} == {3}


def test_a_population_with_only_delayed_inputs_has_none_present_at_first(tiny: IR) -> None:
    ir = with_time(tiny, steps=3, lateral_delay=1)
    only_lateral = ir.model_copy(update={"projections": [
        q for q in ir.projections if q.target != "VISp2/3" or q.delay]})
    alone = time_schedule(only_lateral, ["VISp2/3"], [0])
    assert [c.population for c in alone.computations] == ["VISp2/3"]  # nothing upstream
    (first,) = alone.computations
    assert first.inputs == () and set(first.absent) == {LATERAL, "VISl2/3->VISp2/3"}
    assert alone.memory == 0
    schedule = time_schedule(only_lateral, ["VISp2/3"], [0, 1, 2])
    assert first in schedule.at(0)  # step 0 also runs what step 1's feedback reads
    check(only_lateral, schedule)


def test_defaults_are_the_readout_at_the_readout_steps(tiny: IR) -> None:
    ir = with_recurrence(tiny, steps=3, readout_steps=(1, 2))
    schedule = time_schedule(ir)
    assert schedule.keep == tuple(ir.readout.populations) and schedule.kept_steps == (1, 2)
    assert schedule.steps == 3 and schedule.frames == "still"
    check(ir, schedule)


def test_nothing_after_the_last_kept_step_or_above_the_kept_areas_runs(tiny: IR) -> None:
    ir = with_recurrence(tiny, steps=3)
    schedule = time_schedule(ir, ["VISp4"], [1])
    check(ir, schedule)
    assert max(c.step for c in schedule.computations) == 1
    # VISp4 reads VISl2/3 one step late: step 0 runs up to VISl2/3, step 1 only VISp4's chain
    assert {c.population for c in schedule.at(1)} <= ancestors(tiny, ["VISp4"])
    step0 = {c.population for c in schedule.at(0)}
    assert "VISl2/3" in step0 and "VISp4" in step0
    assert all(c.population in ancestors(ir, ["VISp4"]) for c in schedule.computations)
    full = time_schedule(ir, ir.population_names(), range(3))
    assert len(schedule.computations) < len(full.computations)


def test_clip_frames_are_read_at_their_own_step(tiny: IR) -> None:
    ir = with_recurrence(tiny, steps=3, clip=True)
    schedule = time_schedule(ir, None, range(3))
    assert schedule.frames == "clip"
    check(ir, schedule)
    frames = [(r.source_step, c.step) for c in schedule.computations for r in c.inputs
              if r.source == INPUT]
    assert frames and all(read == now for read, now in frames)
    released = [pair for c in schedule.computations for pair in c.release if pair[0] == INPUT]
    assert sorted(released) == [(INPUT, step) for step in range(3)]


def test_unknown_populations_and_steps_are_usage_errors(tiny: IR) -> None:
    with pytest.raises(UsageError, match="did you mean 'VISp4'"):
        time_schedule(tiny, ["VISp44"])
    with pytest.raises(UsageError, match="step 1 is outside"):
        time_schedule(tiny, None, [1])


def test_any_keep_and_steps_give_a_sound_minimal_schedule(tiny: IR) -> None:
    hypothesis = pytest.importorskip("hypothesis")
    strategies = pytest.importorskip("hypothesis.strategies")
    ir = with_recurrence(tiny, steps=4, clip=True)
    names = ir.population_names()

    @hypothesis.settings(max_examples=40, deadline=None)
    @hypothesis.given(strategies.sets(strategies.sampled_from(names), min_size=1),
                      strategies.sets(strategies.integers(0, 3), min_size=1))
    def sound(keep: set[str], steps: set[int]) -> None:
        check(ir, time_schedule(ir, sorted(keep), sorted(steps)))

    sound()


@pytest.mark.parametrize("spec", SPECS)
def test_every_shipped_spec_schedules_soundly(spec: str) -> None:
    ir = mnc.compile_ir(spec)
    check(ir, time_schedule(ir))
    check(ir, time_schedule(ir, ir.population_names(), range(ir.dynamics.steps)))


@pytest.mark.parametrize("spec", SPECS)
def test_costs_count_each_projection_once_per_step_from_its_delay(spec: str, tiny: IR) -> None:
    from mnc.analysis.recurrence import active_steps, projection_runs

    for ir in (mnc.compile_ir(spec), with_recurrence(tiny, steps=3)):
        runs = projection_runs(ir)
        assert runs == {q.name: ir.dynamics.steps - q.delay for q in ir.projections}
        assert all(active_steps(ir, q) == runs[q.name] for q in ir.projections[:3])
    ir = with_recurrence(tiny, steps=3)
    pruned = projection_runs(ir, time_schedule(ir, ["VISp4"], [0]))
    assert pruned["LGNd->VISp4"] == 1 and pruned["VISl2/3->VISp4"] == 0
