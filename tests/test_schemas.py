"""schemas/ holds exactly what the models generate, and the shipped specs validate against it."""

from __future__ import annotations

import json

import pytest
import yaml

from mnc.compiler import compile_ir
from mnc.ir.serialize import ir_to_dict
from mnc.schema import SCHEMA_DIR, rendered
from tests.conftest import DEFAULT_SPEC


@pytest.mark.parametrize("name", ["spec.schema.json", "ir.schema.json"])
def test_schema_files_are_up_to_date(name):
    on_disk = (SCHEMA_DIR / name).read_text()
    assert on_disk == rendered()[name], f"run `python -m mnc.schema` to regenerate {name}"


def test_default_spec_and_its_ir_validate_against_schemas():
    jsonschema = pytest.importorskip("jsonschema", reason="needs jsonschema (the test extra)")
    spec_schema = json.loads((SCHEMA_DIR / "spec.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(DEFAULT_SPEC.read_text()), spec_schema)
    ir_schema = json.loads((SCHEMA_DIR / "ir.schema.json").read_text())
    jsonschema.validate(ir_to_dict(compile_ir(DEFAULT_SPEC)), ir_schema)
