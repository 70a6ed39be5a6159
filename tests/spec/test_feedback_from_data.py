"""The feedback variants follow the measured feedforward/feedback calls (Harris et al. 2019).

A copy of the table lives in tests/data, so these tests never depend on files outside the
repository; when the shared reference copy is present it must agree.
"""

from __future__ import annotations

import pytest

from mnc.compiler import compile_ir
from mnc.measure.hierarchy import (
    FEEDBACK_THRESHOLD,
    Call,
    PairCall,
    load_hierarchy_table,
    weighted_call,
)
from mnc.spec.loader import load_spec
from tests.conftest import REFERENCE, ROOT, SPECS

HARRIS = ROOT / "tests" / "data" / "harris2019-visual-hierarchy.json"
SHARED_HARRIS = REFERENCE / "harris2019-visual-hierarchy.json"
MODELLED_LAYERS = ("4", "2/3", "5")


@pytest.fixture(scope="module")
def table():
    return load_hierarchy_table(HARRIS)


def delayed_interareal(ir) -> dict[tuple[str, str], set[str]]:
    """(source area, target area) -> source layers of the delayed interareal projections."""
    pairs: dict[tuple[str, str], set[str]] = {}
    for projection in ir.projections:
        source, target = ir.population(projection.source), ir.population(projection.target)
        if projection.delay and source.area != target.area:
            pairs.setdefault((source.area, target.area), set()).add(source.layer)
            assert target.layer in ("2/3", "5"), projection.name
    return pairs


def test_weighted_call_and_layers_by_hand():
    calls = (
        Call("Rbp4-Cre_KL100", -1, 0.9),
        Call("Cux2-IRES-Cre", 1, 0.3),
        Call("Ntsr1-Cre_GN220", -1, 0.6),
    )
    pair = PairCall("A", "B", calls)
    assert weighted_call(calls) == pytest.approx((-0.9 + 0.3 - 0.6) / 1.8)
    assert pair.feedback  # -0.67 <= -0.5
    assert pair.source_layers(MODELLED_LAYERS) == ["5"]  # Cux2 (2/3, 4) calls feedforward
    assert pair.layer_call("6") == -1.0
    assert not PairCall("A", "B", (Call("Rbp4-Cre_KL100", -1, 0.6), calls[1])).feedback  # -1/3
    assert (
        PairCall("A", "B", (Call("Tlx3-Cre_PL56", -1, 3.0), Call("Rorb-IRES2-Cre", 1, 1.0))).call
        == FEEDBACK_THRESHOLD
    )


@pytest.mark.parametrize("variant", ["feedback", "tiny-feedback"])
def test_delayed_projections_are_exactly_the_measured_feedback(table, variant):
    ir = compile_ir(SPECS / "variants" / f"{variant}.yaml")
    areas = {population.area for population in ir.populations}
    expected = {
        (pair.source, pair.target): set(pair.source_layers(MODELLED_LAYERS))
        for pair in table.feedback_pairs(areas)
    }
    found = delayed_interareal(ir)
    for key in found:  # every delayed interareal projection is a pair the data call feedback
        assert key in table.pairs and table.pairs[key].feedback, key
    assert found == expected  # and every such pair is present, from the layers carrying it
    assert len(expected) >= 10
    if variant == "feedback":  # the counts README.md states
        assert len(expected) == 14
        assert sum(1 for q in ir.projections if q.delay and q.source != q.target) == 70
    for pair in table.feedback_pairs(areas):  # none is a feed-forward projection of MouseNet
        assert not any(
            ir.population(q.source).area == pair.source
            and q.delay == 0
            and ir.population(q.target).area == pair.target
            for q in ir.projections
        ), pair


def test_spec_cites_the_measured_scores_and_calls(table):
    spec = load_spec(SPECS / "variants" / "feedback.yaml").spec
    for area, region in spec.areas.regions.items():
        if area in table.scores:
            assert region.hierarchy_score == pytest.approx(table.scores[area])
    assert "Harris" in spec.areas.hierarchy_score_source
    for key, projection in spec.interareal.projections.items():
        if projection.delay:
            source = projection.source
            assert "Harris et al. 2019" in source and "ASSUMED" in source, key
            area = key.split("->")[0].rstrip("/0123456789")
            target = key.split("->")[1].rstrip("/0123456789")
            assert f"{table.pairs[(area, target)].call:+.2f}" in source, key
    assert spec.interareal.feedback_share is not None
    assert spec.interareal.feedback_share_source.startswith("ASSUMED")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("interareal: {feedback_share: 0.3}", "without interareal.feedback_share_source"),
        ("interareal: {feedback_share: 1, feedback_share_source: x}", "feedback_share"),
        (
            "areas: {regions: {VISp: {hierarchy_score: -0.4}}}",
            "without areas.hierarchy_score_source",
        ),
    ],
)
def test_uncited_or_bad_scores_and_shares_get_one_message(tmp_path, body, expected):
    from mnc.errors import SpecError
    from tests.conftest import DEFAULT_SPEC

    path = tmp_path / "variant.yaml"
    path.write_text(f"extends: {DEFAULT_SPEC}\n{body}\n")
    with pytest.raises(SpecError) as caught:
        compile_ir(path)
    [problem] = caught.value.problems
    assert str(problem).startswith(str(path)) and expected in str(problem)


@pytest.mark.skipif(not SHARED_HARRIS.exists(), reason="shared reference not present")
def test_copy_matches_shared_reference():
    assert SHARED_HARRIS.read_bytes() == HARRIS.read_bytes()
