"""Spec scalars YAML 1.1 (PyYAML) reads as something else than they look (``010`` as 8,
``1:30`` as 90, ``yes`` as true) and values of the wrong kind (``true`` or ``"64"`` where a
number is expected) are refused with a message naming the file and line, never coerced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mnc
from mnc.errors import SpecError
from tests.conftest import TINY_SPEC


def _spec(tmp_path: Path, value: str, field: str = "height_px") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"extends: {TINY_SPEC}\ninput:\n  {field}: {value}\n")
    return path


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("010", "octal"),
        ("0017", "octal"),
        ("1:30", "base-60"),
        ("0x20", "decimal"),
        ("1_000", "decimal"),
        ("+64", "decimal"),
    ],
)
def test_integers_yaml_1_1_reads_differently_are_refused(
    tmp_path: Path, value: str, words: str
) -> None:
    path = _spec(tmp_path, value)
    with pytest.raises(SpecError, match=f"{path}:3:.*{re.escape(value)}.*{words}"):
        mnc.compile_ir(path)


@pytest.mark.parametrize("value", ["1:30.5", "1_0.5"])
def test_floats_yaml_1_1_reads_differently_are_refused(tmp_path: Path, value: str) -> None:
    path = _spec(tmp_path, value, "pixels_per_degree")
    with pytest.raises(SpecError, match=f"{path}:3:"):
        mnc.compile_ir(path)


@pytest.mark.parametrize("value", ["yes", "no", "on", "off", "Yes", "OFF"])
def test_yes_and_no_are_not_booleans(tmp_path: Path, value: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(f"extends: {TINY_SPEC}\nlaminar: {value}\n")
    with pytest.raises(SpecError, match=f"{path}:2:.*'{value}'.*true or false"):
        mnc.compile_ir(path)


@pytest.mark.parametrize("value", ["true", "'64'", "64.0", "0o100"])
def test_a_number_must_be_a_number(tmp_path: Path, value: str) -> None:
    path = _spec(tmp_path, value)
    with pytest.raises(SpecError, match=f"{path}:3:.*height_px"):
        mnc.compile_ir(path)


def test_plain_numbers_are_read(tmp_path: Path) -> None:
    assert mnc.compile_ir(_spec(tmp_path, "32")).input.height == 32
