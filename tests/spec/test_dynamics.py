"""Recurrent specs: the dynamics block, delays, the cycle rule, and what they lower to."""

from __future__ import annotations

import math

import pytest

from mnc.compiler import compile_ir
from mnc.errors import SpecError
from mnc.explain import explain, render_explanation
from mnc.ir.invariants import ir_problems
from tests.conftest import DEFAULT_SPEC, SPECS

FEEDBACK = SPECS / "variants" / "feedback.yaml"
TINY_FEEDBACK = SPECS / "variants" / "tiny-feedback.yaml"
HEAD = f"extends: {DEFAULT_SPEC}\n"

# Every feed-forward shipped spec keeps the network (and the hash) it had before time steps
# and delays existed: saved models and checkpoints name their network by this hash.
FEED_FORWARD_HASHES = {
    "mouse": "4dbe7cacacacc734b81f42b29d95c8a00cc5409949af473d31484065ff94dbfb",
    "tiny": "e994712436447a33e657edec939c1df0b7e01b137296b2e5eb5f16332a2605f8",
    "no-vispor": "09e4edecfaf24e686fd25dee313d65cfa587be80ad7e40028840ba94bd3edfb7",
    "visp-only": "bfe2083f2cdf465f5d58d591f03957fc42ec5c26e4e87cf8248e027705cb2b20",
}


def write(tmp_path, body: str, name: str = "variant.yaml"):
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


def problems_of(path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        compile_ir(path)
    return [str(problem) for problem in caught.value.problems]


def line_of(path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1)
                if text in line)


@pytest.fixture(scope="module")
def feedback():
    return compile_ir(FEEDBACK)


@pytest.mark.parametrize("name", sorted(FEED_FORWARD_HASHES))
def test_feed_forward_specs_keep_their_networks(name):
    ir = compile_ir(name)
    assert ir.content_hash == FEED_FORWARD_HASHES[name]
    assert not ir.is_recurrent and all(q.delay == 0 and q.upsample == 1 for q in ir.projections)


def test_one_step_written_out_is_the_default_network(tmp_path):
    path = write(tmp_path, "dynamics:\n  steps: 1\n  steps_source: the default\n"
                           "  readout: last\n  readout_source: the default\n")
    ir = compile_ir(path)
    assert ir.content_hash == FEED_FORWARD_HASHES["mouse"]
    assert ir.provenance.sources["dynamics.steps"] == "the default"


def test_the_dynamics_block_lowers_into_the_ir(tmp_path):
    path = write(tmp_path, """\
dynamics:
  steps: 5
  steps_source: ASSUMED five
  input: clip
  input_source: ASSUMED movies
  readout: {mean: [2, 4]}
  readout_source: ASSUMED the last three
""")
    ir = compile_ir(path)
    assert (ir.dynamics.steps, ir.dynamics.input, ir.dynamics.readout_steps) == (5, "clip", (2, 4))
    assert list(ir.dynamics.readout_range) == [2, 3, 4]
    assert ir.provenance.sources["dynamics.input"] == "ASSUMED movies"
    assert ir.content_hash != FEED_FORWARD_HASHES["mouse"]


@pytest.mark.parametrize(
    ("body", "marker", "field", "expected"),
    [
        ("dynamics:\n  steps: 0\n  steps_source: x\n", "steps: 0", "dynamics.steps",
         "expected a number >= 1, got 0"),
        ("dynamics:\n  steps: 2\n", "steps: 2", "dynamics.steps",
         "set without dynamics.steps_source"),
        ("dynamics:\n  input: movie\n  input_source: x\n", "input: movie", "dynamics.input",
         "'still' or 'clip', got 'movie'"),
        ("dynamics:\n  readout: first\n  readout_source: x\n", "readout: first",
         "dynamics.readout", "'last', got 'first' (or a mapping with mean)"),
        ("dynamics:\n  steps: 3\n  steps_source: x\n  readout: {mean: [1, 3]}\n"
         "  readout_source: x\n", "mean: [1, 3]", "dynamics.readout.mean",
         "0 <= first <= last < 3"),
        ("dynamics:\n  steps: 2\n  steps_source: x\n  rate_hz: 10\n", "rate_hz",
         "dynamics.rate_hz", "unknown field 'rate_hz'"),
    ],
)
def test_bad_dynamics_values_get_one_located_message(tmp_path, body, marker, field, expected):
    path = write(tmp_path, body)
    [message] = problems_of(path)
    assert message.startswith(f"{path}:{line_of(path, marker)}:")
    assert f": {field}: " in message and expected in message


def test_an_undelayed_cycle_is_named_with_the_projection_to_delay(tmp_path):
    path = write(tmp_path, 'interlaminar:\n  projections:\n    - "4->2/3"\n    - "2/3->5"\n'
                           '    - "5->2/3"\n')
    [message] = problems_of(path)
    assert message.startswith(f"{path}:{line_of(path, '5->2/3')}:")
    assert "interlaminar.projections[2]: " in message
    assert "form a cycle (VISp2/3 -> VISp5 -> VISp2/3)" in message
    assert "give VISp5->VISp2/3" in message
    assert 'write the entry as {projection: "5->2/3", delay: 1}' in message


def test_delaying_the_named_projection_breaks_the_cycle(tmp_path):
    path = write(tmp_path, """\
dynamics: {steps: 2, steps_source: x}
interlaminar:
  projections: ["4->2/3", "2/3->5", {projection: "5->2/3", delay: 1}]
""")
    ir = compile_ir(path)
    back = ir.projection("VISp5->VISp2/3")
    assert back.delay == 1 and back.profile.kind == "interlaminar"
    # Billeh table 5 -> 2/3: 0.021 at 75 um; cat width 150 um scaled by 114 / 180
    assert back.peak_probability == pytest.approx(0.021 / _falloff(150 / 180 * 114))
    order = ir.population_names()
    assert order == compile_ir(DEFAULT_SPEC).population_names()  # delay-0 order unchanged
    assert ir_problems(ir) == []


def _falloff(width_um: float) -> float:
    return math.exp(-(75**2) / (2 * width_um**2))


def test_lateral_needs_a_delay_once_per_entry(tmp_path):
    path = write(tmp_path, 'interlaminar:\n  projections: ["4->2/3", "2/3->5", "2/3->2/3"]\n')
    [message] = problems_of(path)
    assert "interlaminar.projections[2]: VISp2/3->VISp2/3, VISl2/3->VISl2/3" in message
    assert "lateral (a population onto itself)" in message


@pytest.mark.parametrize(
    ("body", "projection", "expected"),
    [
        # a cycle between areas of one level names the later area
        pytest.param('interareal:\n  projections:\n'
                     '    "VISl4->VISal4": {strength: 0.1, sigma_mm: 0.1}\n'
                     '    "VISal4->VISl4": {strength: 0.1, sigma_mm: 0.1}\n', "VISal4->VISl4",
                     ("cycle (VISl4 -> VISal4 -> VISl4)",
                      "set interareal.projections.VISal4->VISl4.delay: 1"), id="cycle"),
        pytest.param('dynamics: {steps: 2, steps_source: x}\ninterareal:\n  projections:\n'
                     '    "VISl5->VISp2/3": {strength: 1, sigma_mm: 0.1, delay: 2}\n',
                     "VISl5->VISp2/3", ("delay 2 but the network runs 2 step(s)",),
                     id="delay-past-the-last-step"),
    ],
)
def test_a_bad_interareal_delay_gets_one_message_at_its_entry(tmp_path, body, projection,
                                                               expected):
    path = write(tmp_path, body)
    [message] = problems_of(path)
    assert message.startswith(f"{path}:{line_of(path, projection)}:")
    assert f"interareal.projections.{projection}.delay: " in message
    assert all(text in message for text in expected), message


@pytest.mark.parametrize(
    ("entry", "field", "expected"),
    [
        ('{projection: "2/3->2/3", delay: 1, areas: [VISq]}', "interlaminar.projections[2]"
         ".areas[0]", "unknown area 'VISq' (did you mean 'VISp'?)"),
        ('{projection: "2/3->2/3", delay: 1, areas: [LGNd]}', "interlaminar.projections[2]"
         ".areas[0]", "area 'LGNd' is not laminar"),
        ('{projection: "2/3->2/3", dealy: 1}', "interlaminar.projections[2].dealy",
         "(did you mean 'delay'?)"),
        ('{projection: "2/3->2/3", delay: -1}', "interlaminar.projections[2].delay",
         "expected a number >= 0, got -1"),
        ('"2/3-2/3"', "interlaminar.projections[2]", "as SOURCE->TARGET, got '2/3-2/3' (or a "
         "mapping with projection, delay, areas, source)"),
    ],
)
def test_bad_interlaminar_entries_get_one_message(tmp_path, entry, field, expected):
    path = write(tmp_path, "dynamics: {steps: 2, steps_source: x}\ninterlaminar:\n"
                           f'  projections: ["4->2/3", "2/3->5", {entry}]\n')
    [message] = problems_of(path)
    assert message.startswith(f"{path}:{line_of(path, 'projections')}:")
    assert f": {field}: " in message and expected in message


def test_feedback_variant_compiles_with_delays_and_upsampling(feedback):
    assert feedback.is_recurrent and ir_problems(feedback) == []
    assert (feedback.dynamics.steps, feedback.dynamics.readout_steps) == (4, (1, 3))
    delayed = {q.name: q for q in feedback.projections if q.delay}
    assert all(q.delay == 1 for q in delayed.values())
    lateral = delayed.pop("VISp2/3->VISp2/3")
    assert (lateral.upsample, lateral.stride, lateral.kernel_size) == (1, 1, 9)
    # feedback (which pairs: tests/spec/test_feedback_from_data.py) lands on layers 2/3 and 5
    assert {feedback.population(q.target).layer for q in delayed.values()} == {"2/3", "5"}
    onto_visp = [q for q in delayed.values() if q.target.startswith("VISp")
                 and feedback.population(q.target).area == "VISp"]
    assert len(onto_visp) == 2 * 12
    for projection in onto_visp:  # 32x32 onto 64x64: repeated twice, stride 1
        assert (projection.upsample, projection.stride) == (2, 1)
        total = projection.kernel_size - 1
        assert sum(projection.padding_lrtb[:2]) == sum(projection.padding_lrtb[2:]) == total
    assert all(q.upsample == 1 for q in delayed.values() if q not in onto_visp)
    # the width rule: the reverse projection's width in visual angle (1 px per degree on VISp)
    default = compile_ir(DEFAULT_SPEC)
    for name, reverse in [("VISl5->VISp2/3", "VISp5->VISl4"),
                          ("VISpor2/3->VISl5", "VISl2/3->VISpor4")]:
        degrees = default.projection(reverse).sigma_px / default.population(
            reverse.split("->")[0]).pixels_per_degree
        target = feedback.population(name.split("->")[1])
        assert feedback.projection(name).sigma_px == pytest.approx(
            degrees * target.pixels_per_degree, rel=1e-4)
    # the feed-forward part is the default network, populations in the same order
    assert feedback.population_names() == default.population_names()
    forward = [q for q in feedback.projections if not q.delay]
    assert [(q.name, q.kernel_size, q.peak_probability) for q in forward] == [
        (q.name, q.kernel_size, q.peak_probability) for q in default.projections]


def test_the_in_degree_is_split_over_all_inputs_by_strength(tmp_path):
    # VISl4 gets feedback from VISpor5 beside its three feed-forward inputs (strengths
    # 0.207075 + 0.429104 + 0.363821 = 1): all four share VISl4's in-degree by strength
    path = write(tmp_path, """\
dynamics: {steps: 2, steps_source: x}
interareal:
  projections:
    "VISpor5->VISl4": {strength: 1, sigma_mm: 0.05, delay: 1}
""")
    ir = compile_ir(path)
    default = compile_ir(DEFAULT_SPEC)
    back = ir.projection("VISpor5->VISl4")
    assert back.profile.strength_total == pytest.approx(2.0)
    assert back.derivations["peak_probability"].inputs["inputs_from_source"] == pytest.approx(500)
    for source in ("VISp4", "VISp2/3", "VISp5"):
        name = f"{source}->VISl4"
        assert ir.projection(name).peak_probability == pytest.approx(
            default.projection(name).peak_probability / 2)
    shares = explain(ir, "VISpor5->VISl4")["in_degree_split"]["shares"]
    assert {share["projection"]: round(share["inputs"], 3) for share in shares} == {
        "VISp4->VISl4": 103.538, "VISp2/3->VISl4": 214.552, "VISp5->VISl4": 181.911,
        "VISpor5->VISl4": 500.0}


def test_explain_shows_delays_and_the_split(feedback):
    text = render_explanation(explain(feedback, "VISl5->VISp2/3"))
    assert "delay             1" in text and "upsample          2" in text
    assert "reads VISl5 at step t - 1" in text
    assert "delayed (feedback) share 0.3 of it by strength" in text
    assert "VISpl5->VISp2/3        strength 1 / 4.999997 -> 60 inputs, delay 1" in text
    assert "[interareal.projections.VISl5->VISp2/3] direction and source layer: Harris" in text
    assert "[interareal.feedback_share] ASSUMED" in text
    population = render_explanation(explain(feedback, "VISp2/3"))
    assert "VISl5->VISp2/3 (delay 1)" in population
    assert "VISp2/3->VISp2/3 (delay 1)" in population
    plain = render_explanation(explain(compile_ir(DEFAULT_SPEC), "VISp4->VISl4"))
    assert "delay             0" in plain


def test_tiny_feedback_is_tiny_plus_the_feedback(feedback):
    tiny, small = compile_ir("tiny"), compile_ir(TINY_FEEDBACK)
    assert [p.model_dump(exclude={"derivations"}) for p in small.populations] == [
        p.model_dump(exclude={"derivations"}) for p in tiny.populations]
    forward = [q.name for q in small.projections if not q.delay]
    assert forward == [q.name for q in tiny.projections]
    assert {q.name for q in small.projections if q.delay} == {
        q.name for q in feedback.projections if q.delay}
    assert small.readout.classes == 10 and small.dynamics.steps == 3
    assert ir_problems(small) == []


@pytest.mark.parametrize("spec", [FEEDBACK, TINY_FEEDBACK], ids=lambda path: path.stem)
def test_recurrent_variants_validate_against_the_schema(spec):
    import json

    import jsonschema

    from mnc.schema import SCHEMA_DIR
    from mnc.spec.loader import read_merged

    data, _, _ = read_merged(spec)
    jsonschema.validate(data, json.loads((SCHEMA_DIR / "spec.schema.json").read_text()))


def test_an_interlaminar_entry_for_a_removed_area_is_pruned_with_a_note(tmp_path):
    path = write(tmp_path, """\
dynamics: {steps: 2, steps_source: x}
areas: {regions: {VISpor: null}}
readout: {populations: [VISp5, VISl5]}
interlaminar:
  projections: ["4->2/3", "2/3->5", {projection: "2/3->2/3", delay: 1, areas: [VISp, VISpor]}]
""")
    ir = compile_ir(path)
    assert [q.name for q in ir.projections if q.delay] == ["VISp2/3->VISp2/3"]
    assert any(note.startswith("area VISpor is removed") and "VISpor2/3->VISpor2/3" in note
               for note in ir.provenance.notes)
