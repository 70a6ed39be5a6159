"""The weights payload: names, shapes and the checks every loader shares (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

import mnc
from mnc.errors import BackendError, UserFileError
from mnc.ir.serialize import ir_to_json
from mnc.lowering.fresh_weights import fresh_weights
from mnc.lowering.weights_format import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    check_content_hash,
    check_header,
    check_state,
    ir_from_payload,
    payload_schema,
    strip_wrappers,
)
from tests.conftest import ROOT

TINY = ROOT / "specs" / "variants" / "tiny.yaml"


@pytest.fixture(scope="module")
def ir():
    return mnc.compile_ir(TINY)


def test_names_follow_the_key_rule(ir):
    schema = payload_schema(ir)
    for projection in ir.projections:
        key = f"{projection.source}__{projection.target}".replace("/", "_")
        assert f"convs.{key}.weight" in schema and f"convs.{key}.mask" in schema
    assert any("/" in p.name for p in ir.populations) and not any("/" in n for n in schema)
    assert list(schema)[-2:] == ["classifier.weight", "classifier.bias"]


def test_wrapper_prefixes_are_stripped():
    state = {"module._orig_mod.classifier.bias": 1, "_orig_mod.module.norms.x.weight": 2,
             "classifier.weight": 3}
    assert strip_wrappers(state) == {"classifier.bias": 1, "norms.x.weight": 2,
                                     "classifier.weight": 3}


def test_a_fresh_payload_fits_its_schema_strictly(ir):
    check_state(ir, fresh_weights(ir), "fresh", strict=True)


def test_first_mismatch_is_named_with_both_shapes(ir):
    state = fresh_weights(ir)
    state["classifier.bias"] = np.zeros(3, np.float32)
    classes = ir.readout.classes
    with pytest.raises(BackendError, match=r"^w\.pt: tensor 'classifier.bias' has shape \(3,\) "
                                           rf"in the file, the network needs \({classes},\)"):
        check_state(ir, state, "w.pt", strict=True)


def test_missing_tensors_strict_and_for_inference(ir):
    state = fresh_weights(ir)
    mask = next(name for name in state if name.endswith(".mask"))
    del state[mask]
    check_state(ir, state, "w.pt", strict=False)  # masks are redrawn from the IR
    with pytest.raises(BackendError, match=rf"tensor '{mask}' is missing"):
        check_state(ir, state, "w.pt", strict=True)
    state["norms.nowhere.weight"] = np.zeros(1)
    with pytest.raises(BackendError, match="'norms.nowhere.weight' in the file has no place"):
        check_state(ir, state, "w.pt", strict=False)


def test_a_hash_mismatch_names_both_hashes(ir):
    with pytest.raises(BackendError, match=f"abcdefabcdef in the file, {ir.short_hash} for"):
        check_content_hash("abcdefabcdef" * 5, ir, "w.pt")
    check_content_hash(ir.content_hash, ir, "w.pt")


@pytest.mark.parametrize(("payload", "match"), [
    ([1, 2], "found list"),
    ({"a.weight": np.zeros(2)}, "a bare state dict"),
    ({"format": "x"}, "format is 'x', expected 'mnc.torch-model' or 'mnc.torch-checkpoint'"),
    ({"format": MODEL_FORMAT, "format_version": 2}, "format_version 2 is not supported"),
    ({"format": CHECKPOINT_FORMAT, "format_version": 1, "content_hash": "h", "ir_json": "{}"},
     "entry 'state_dict' is missing"),
    ({"format": MODEL_FORMAT, "format_version": 1, "content_hash": "h", "ir_json": "{}",
      "state_dict": [1]}, "'state_dict' is not a dict of tensors"),
])
def test_malformed_headers_get_one_user_error(payload, match):
    with pytest.raises(UserFileError, match=f"^m.pt: .*{match}"):
        check_header(payload, "m.pt")


def test_the_ir_must_match_the_files_hash(ir):
    payload = {"ir_json": ir_to_json(ir), "content_hash": ir.content_hash}
    assert ir_from_payload(payload, "last.pt") == ir
    with pytest.raises(UserFileError, match=f"content_hash 000000000000 does not match the IR "
                                            rf"the file holds \({ir.short_hash}\)"):
        ir_from_payload({**payload, "content_hash": "0" * 64}, "last.pt")
