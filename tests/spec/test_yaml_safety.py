"""Hostile or broken YAML fails fast with one clear message."""

from __future__ import annotations

import pytest

from mnc.errors import SpecError
from mnc.spec.loader import load_spec


def message_for(tmp_path, content: str | bytes, name: str = "hostile.yaml") -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    return str(caught.value)


def test_python_object_tag_refused(tmp_path):
    message = message_for(tmp_path, "version: !!python/object/apply:os.system ['echo hi']\n")
    assert "tag" in message and "not allowed" in message and ":1:" in message


def test_billion_laughs_stops_quickly(tmp_path):
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    message = message_for(tmp_path, "\n".join(lines) + "\n")
    assert "alias" in message


def test_duplicate_keys_refused(tmp_path):
    message = message_for(tmp_path, "version: 1\nversion: 2\n")
    assert "duplicate key 'version'" in message and ":2:" in message


def test_empty_binary_and_missing_files(tmp_path):
    assert "empty" in message_for(tmp_path, "", "empty.yaml")
    assert "not UTF-8" in message_for(tmp_path, b"\xff\xfe\x00garbage", "binary.yaml")
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)


def test_malformed_yaml_points_at_line(tmp_path):
    message = message_for(tmp_path, "version: 1\nname: [unclosed\ninput: {}\n")
    assert "malformed YAML" in message and "hostile.yaml:" in message


def test_top_level_must_be_mapping(tmp_path):
    assert "mapping" in message_for(tmp_path, "- 1\n- 2\n")


def test_non_finite_numbers_refused(tmp_path, write_variant):
    path = write_variant({"kernel": {"edge_z": float("nan")}})
    with pytest.raises(SpecError, match="kernel.edge_z"):
        load_spec(path)
