"""The package root's Python API that needs no torch: spec names, the IR backend, saving and
loading an IR, and ``import mnc`` staying light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mnc
from mnc.errors import UsageError
from mnc.ir.model import IR
from tests.conftest import ROOT


def test_every_name_in_all_is_there_and_documented():
    assert {"compile", "save", "load", "train", "evaluate", "list_specs"} <= set(mnc.__all__)
    for name in mnc.__all__:
        assert getattr(mnc, name) is not None
        if callable(getattr(mnc, name)):
            assert getattr(mnc, name).__doc__, name


def test_list_specs_names_the_shipped_specs_default_first():
    names = mnc.list_specs()
    assert names[0] == "mouse" and "tiny" in names
    assert all(isinstance(mnc.compile(name, backend="ir"), IR) for name in ("tiny",))


def test_the_ir_backend_returns_the_ir_and_saves_and_loads_as_json(tmp_path: Path):
    ir = mnc.compile("tiny", backend="ir")
    assert ir.content_hash == mnc.compile_ir("tiny").content_hash
    path = mnc.save(ir, tmp_path / "tiny.json")
    assert mnc.load(path).content_hash == ir.content_hash
    with pytest.raises(UsageError, match="backend 'ir' takes no options"):
        mnc.compile("tiny", backend="ir", strategy="plain")


def test_import_mnc_and_the_ir_backend_import_no_torch():
    code = ("import sys, mnc; mnc.compile('tiny', backend='ir'); mnc.list_specs(); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "False"
