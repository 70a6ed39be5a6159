"""Text inside an IR file (names, citations, notes) reaches terminals: a file with control or
bidirectional characters in it is refused on reading, like a spec with them."""

from __future__ import annotations

import json

import pytest

from mnc.compiler import compile_ir
from mnc.errors import UserFileError
from mnc.ir.serialize import ir_from_json, ir_to_json
from tests.conftest import TINY_SPEC


@pytest.fixture(scope="module")
def ir_data() -> dict:
    return json.loads(ir_to_json(compile_ir(TINY_SPEC)))


@pytest.mark.parametrize("text", ["Mouse\x1b]0;title\x07Net", "Mouse\x9bNet", "\u202eteN"])
def test_unsafe_text_in_an_ir_file_is_refused(ir_data, text):
    edited = json.loads(json.dumps(ir_data))
    edited["name"] = text
    with pytest.raises(UserFileError, match=r"(?s)edited\.json.*name"):
        ir_from_json(json.dumps(edited), "edited.json")
    edited = json.loads(json.dumps(ir_data))
    block = next(iter(edited["provenance"]["sources"]))
    edited["provenance"]["sources"][block] = text
    with pytest.raises(UserFileError, match=r"provenance\.sources"):
        ir_from_json(json.dumps(edited), "edited.json")


def test_a_compiled_ir_keeps_its_text(ir_data):
    assert ir_from_json(json.dumps(ir_data)).name == ir_data["name"]
