"""Free text of a spec (name, description, sources) is printed on terminals: no control codes,
no C1 controls and no bidirectional overrides that reorder what a reader sees."""

from __future__ import annotations

import pytest
import yaml

from mnc.errors import SpecError
from mnc.spec.loader import load_spec
from tests.conftest import DEFAULT_SPEC

UNSAFE = ["\x1b", "\x85", "\x9b", "\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c"]


@pytest.mark.parametrize("character", UNSAFE, ids=[f"U+{ord(c):04X}" for c in UNSAFE])
@pytest.mark.parametrize("field", ["name", "description"])
def test_unsafe_characters_in_free_text_are_refused(tmp_path, field, character):
    spec = tmp_path / "text.yaml"
    # written as a YAML escape: a raw U+0085 would be read as a line break
    spec.write_text(f'extends: {DEFAULT_SPEC}\n{field}: "Mouse\\u{ord(character):04x}Net"\n')
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    message = str(caught.value)
    assert field in message and "printable text" in message
    assert character not in message  # shown escaped, never sent to the terminal


def test_ordinary_unicode_text_is_kept(tmp_path):
    spec = tmp_path / "text.yaml"
    spec.write_text(yaml.safe_dump({"extends": str(DEFAULT_SPEC),
                                    "description": "Souris — Maus 小鼠, µm\nsecond line"},
                                   allow_unicode=True), encoding="utf-8")
    assert load_spec(spec).spec.description.startswith("Souris")
