"""The default spec compiles to the published MouseNet architecture."""

from __future__ import annotations

import json

import pytest

from mnc.compiler import compile_ir
from tests.conftest import DEFAULT_SPEC, REFERENCE, ROOT

# A copy of the published architecture lives in tests/data so the test never depends on
# files outside the repository; when the shared reference is present it must agree.
ARCHITECTURE = ROOT / "tests" / "data" / "mousenet-architecture.json"
SHARED_ARCHITECTURE = REFERENCE / "mousenet-architecture.json"


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(ARCHITECTURE.read_text())


@pytest.fixture(scope="module")
def ir():
    return compile_ir(DEFAULT_SPEC)


def test_populations_match_exactly(ir, reference):
    ours = {p.name: p.model_dump() for p in ir.populations}
    assert set(ours) == {p["name"] for p in reference["populations"]}
    for expected in reference["populations"]:
        actual = ours[expected["name"]]
        for field in ("area", "layer", "channels", "height", "width", "neurons"):
            assert actual[field] == expected[field], (expected["name"], field)


def test_projections_match_published_numbers(ir, reference):
    ours = {q.name: q for q in ir.projections}
    assert len(ours) == len(reference["projections"]) == 49
    for expected in reference["projections"]:
        actual = ours[f"{expected['source']}->{expected['target']}"]
        for field in ("in_channels", "out_channels", "kernel_size", "stride"):
            assert getattr(actual, field) == expected[field], (actual.name, field)
        assert list(actual.padding_lrtb) == expected["padding_lrtb"], actual.name
        for field in ("peak_probability", "sigma_px"):
            assert getattr(actual, field) == pytest.approx(expected[field], rel=1e-3), (
                actual.name,
                field,
            )


def test_readout_and_totals(ir, reference):
    assert ir.readout.populations == reference["readout"]["populations"]
    assert ir.readout.features == reference["readout"]["features"]
    assert ir.readout.classes == reference["readout"]["classes"]
    from mnc.analysis.cost import network_cost

    assert network_cost(ir).dense_macs == reference["totals"]["dense_conv_macs_per_image"]


@pytest.mark.skipif(not SHARED_ARCHITECTURE.exists(), reason="shared reference not present")
def test_copy_matches_shared_reference(reference):
    assert json.loads(SHARED_ARCHITECTURE.read_text()) == reference


def test_content_hash_is_stable_across_compiles(ir):
    again = compile_ir(DEFAULT_SPEC)
    assert again.content_hash == ir.content_hash
    assert len(ir.content_hash) == 64


# The default spec's content hash is part of every saved model, checkpoint and ONNX file:
# it may change only when the network itself changes (then update it here, on purpose).
DEFAULT_SPEC_CONTENT_HASH = "4dbe7cacacacc734b81f42b29d95c8a00cc5409949af473d31484065ff94dbfb"


def test_default_spec_content_hash_is_pinned(ir):
    assert ir.content_hash == DEFAULT_SPEC_CONTENT_HASH
