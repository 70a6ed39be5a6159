"""Short views for the Python prompt and notebooks: IR, spec and model print a few lines."""

from __future__ import annotations

import re

import pytest

import mnc
from mnc.analysis.cost import network_cost, population_totals
from mnc.analysis.display import cost_view
from mnc.frontend import lower_spec
from mnc.spec import load_spec
from tests.conftest import DEFAULT_SPEC, TINY_SPEC


@pytest.fixture(scope="module")
def ir():
    return mnc.compile_ir(DEFAULT_SPEC)


def _short(text: str, lines: int = 5) -> None:
    assert len(text.splitlines()) <= lines and len(text) < 600, text


def test_ir_repr_is_a_few_lines_with_the_facts(ir):
    text = repr(ir)
    _short(text)
    assert str(ir) == text
    assert ir.short_hash in text and repr(ir.name) in text
    assert "input 3x64x64, 23 populations, 49 projections, mask gaussian (seed 0)" in text
    assert "1000 classes" in text
    # Costs are computed a layer above the IR: its repr names the view that has them.
    assert "parameters" not in text and "MACs" not in text
    assert "mnc.analysis.display.cost_view(ir)" in text


def test_the_cost_view_adds_the_cost_to_the_irs_lines(ir):
    text = repr(cost_view(ir))
    _short(text)
    cost = network_cost(ir)
    assert f"{cost.parameters:,} parameters" in text and "masked MACs per image" in text
    own = repr(ir).splitlines()
    assert text.splitlines()[:2] == own[:2] and text.splitlines()[-1] == own[-2]


def test_ir_stays_a_pydantic_model(ir):
    copy = type(ir).model_validate(ir.model_dump())
    assert copy == ir and copy.content_hash == ir.content_hash
    assert "derivations" in ir.model_dump()["populations"][1]


def test_draft_ir_repr_is_short():
    draft = lower_spec(load_spec(TINY_SPEC))
    text = repr(draft)
    _short(text)
    assert text.startswith("DraftIR 'MouseNet tiny'") and "projections" in text


def test_ir_html_has_one_row_per_population(ir):
    page = ir._repr_html_()
    rows = re.findall(r"<tr><td>(.*?)</td>", page)
    assert rows == [population.name for population in ir.populations]
    visp4 = ir.population("VISp4")
    assert f"<tr><td>VISp4</td><td>VISp</td><td>4</td><td>{visp4.channels}</td>" \
        f"<td>{visp4.height}x{visp4.width}</td></tr>" in page
    assert "params" not in page and "cost_view(ir)" in page


def test_the_cost_views_html_has_one_row_per_population_with_costs(ir):
    page = cost_view(ir)._repr_html_()
    rows = re.findall(r"<tr><td>(.*?)</td>", page)
    assert rows == [population.name for population in ir.populations]
    cost = network_cost(ir)
    totals = population_totals(ir, cost)
    assert sum(total.parameters for total in totals) + cost.classifier_parameters == \
        cost.parameters
    visp4 = next(total for total in totals if total.name == "VISp4")
    assert f"<td>VISp4</td><td>VISp</td><td>4</td><td>{ir.population('VISp4').channels}</td>" \
        in page
    assert f"<td>{visp4.parameters:,}</td>" in page
    assert f"classifier: {cost.classifier_parameters:,} parameters" in page


def test_spec_and_loaded_spec_reprs_are_short():
    loaded = load_spec(TINY_SPEC)
    _short(repr(loaded.spec), 4)
    assert "Spec 'MouseNet tiny'" in repr(loaded.spec) and "10 classes" in str(loaded.spec)
    text = repr(loaded)
    _short(text)
    assert "tiny.yaml" in text


def test_model_repr_is_short_and_the_layer_listing_stays_reachable():
    torch = pytest.importorskip("torch")
    model = mnc.compile(str(TINY_SPEC), backend="torch")
    text = repr(model)
    _short(text, 3)
    count = sum(parameter.numel() for parameter in model.parameters())
    assert model.ir.short_hash in text and f"{count:,} parameters" in text
    assert "strategy auto, cpu, float32, train mode" in text
    model.eval().set_strategy("plain")
    assert "strategy plain, cpu, float32, eval mode" in repr(model)
    listing = model.layers_repr()
    assert all(f"({key}): MaskedConv2d" in listing for key in model.convs)
    assert "(classifier): Linear" in listing
    assert repr(torch.nn.Sequential(model)).count("\n") < 6


def test_cost_view_of_something_else_than_an_ir_says_what_it_expects():
    with pytest.raises(TypeError, match="expects a resolved IR"):
        cost_view("not an IR")
