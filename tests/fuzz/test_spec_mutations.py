"""Mutations of the default spec and random text (hypothesis): each compiles or fails with one
message naming the file, never a traceback."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("hypothesis", reason="property tests need hypothesis (the test extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mnc.compiler import compile_ir  # noqa: E402
from mnc.errors import MncError  # noqa: E402
from mnc.spec.yaml_reader import read_yaml  # noqa: E402
from tests.conftest import DEFAULT_SPEC  # noqa: E402

SPEC_DATA = yaml.safe_load(DEFAULT_SPEC.read_text())
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=10)


def _paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, prefix + (index,))
    return found


ALL_PATHS = [path for path in _paths(SPEC_DATA) if path]


def _mutate(data: Any, path: tuple, value: Any, delete: bool) -> Any:
    mutated = copy.deepcopy(data)
    holder = mutated
    for part in path[:-1]:
        holder = holder[part]
    if delete and isinstance(holder, dict):
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return mutated


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(ALL_PATHS), value=values, delete=st.booleans())
def test_mutated_spec_compiles_or_fails_with_a_located_message(path, value, delete):
    mutated = _mutate(SPEC_DATA, path, value, delete)
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "mutated.yaml"
        spec.write_text(yaml.safe_dump(mutated, allow_unicode=True))
        try:
            ir = compile_ir(spec)
        except MncError as error:
            message = str(error)
            assert message and "Traceback" not in message
            assert str(spec) in message or "too large" in message
        else:
            assert ir.populations and ir.projections


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_random_text_is_read_or_refused(text):
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "random.yaml"
        spec.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            read_yaml(spec)
        except MncError as error:
            assert str(spec) in str(error)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_are_read_or_refused(data):
    with tempfile.TemporaryDirectory() as folder:
        spec = Path(folder) / "random.yaml"
        spec.write_bytes(data)
        try:
            read_yaml(spec)
        except MncError as error:
            assert str(spec) in str(error)
