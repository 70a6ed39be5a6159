from __future__ import annotations

import json

import pytest

from mnc.compiler import compile_ir
from mnc.errors import UserFileError
from mnc.ir.serialize import ir_from_json, ir_to_json
from tests.conftest import DEFAULT_SPEC


def test_json_round_trip_keeps_ir_and_hash():
    ir = compile_ir(DEFAULT_SPEC)
    text = ir_to_json(ir)
    again = ir_from_json(text)
    assert again == ir
    assert again.content_hash == ir.content_hash
    data = json.loads(text)
    assert data["populations"][1]["name"] == "LGNd"
    assert {
        "source",
        "target",
        "kernel_size",
        "padding_lrtb",
        "peak_probability",
        "sigma_px",
    } <= set(data["projections"][0])


def test_edited_ir_json_is_refused_by_hash():
    data = json.loads(ir_to_json(compile_ir(DEFAULT_SPEC)))
    data["projections"][0]["kernel_size"] = 11
    with pytest.raises(UserFileError, match="content hash"):
        ir_from_json(json.dumps(data), "edited.json")


def test_hash_ignores_names_and_citations_but_not_numbers(write_variant):
    base = compile_ir(DEFAULT_SPEC)
    renamed = compile_ir(
        write_variant({"name": "Other name", "neurons": {"source": "another citation"}})
    )
    assert renamed.content_hash == base.content_hash
    reseeded = compile_ir(write_variant({"mask": {"seed": 1}}, name="seed.yaml"))
    assert reseeded.content_hash != base.content_hash
