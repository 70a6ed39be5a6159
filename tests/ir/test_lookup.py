"""Looking populations and projections up by name: an index built once, invisible to the IR's
JSON, content hash and equality, and rebuilt for a copy with other items."""

from __future__ import annotations

import pytest

from mnc.compiler import compile_ir
from mnc.ir.model import IR
from tests.conftest import TINY_SPEC


def test_lookups_leave_json_hash_and_equality_alone():
    ir = compile_ir(TINY_SPEC)
    fresh = IR.model_validate_json(ir.model_dump_json())
    looked = IR.model_validate_json(ir.model_dump_json())
    last = looked.projections[-1]
    assert looked.population(last.target).name == last.target
    assert looked.projection(last.name) is last
    assert looked == fresh
    assert looked.model_dump_json() == fresh.model_dump_json()
    assert looked.content_hash == fresh.content_hash == ir.content_hash


def test_a_copy_with_other_items_gets_its_own_index():
    ir = compile_ir(TINY_SPEC)
    last = ir.population_names()[-1]
    assert ir.population(last).name == last
    fewer = ir.model_copy(update={"populations": ir.populations[:-1]})
    with pytest.raises(KeyError, match=last):
        fewer.population(last)
    with pytest.raises(KeyError, match="VISx9"):
        ir.projection("VISx9->VISp4")
