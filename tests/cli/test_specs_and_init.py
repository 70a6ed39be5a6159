"""`mnc specs` lists the shipped specs; `mnc init` starts a variant of one."""

from __future__ import annotations

import json
import re

import pytest

from mnc.analysis.cost import network_cost
from mnc.compiler import compile_ir
from tests.conftest import DEFAULT_SPEC, TINY_SPEC, run_mnc


def test_specs_lists_every_shipped_spec_with_its_network(tmp_path):
    result = run_mnc("specs", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entries = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert list(entries) == ["mouse", "feedback", "no-vispor", "tiny", "tiny-feedback",
                             "visp-only"]
    mouse = compile_ir(DEFAULT_SPEC)
    assert entries["mouse"]["content_hash"] == mouse.content_hash
    assert entries["mouse"]["populations"] == 23 and entries["mouse"]["projections"] == 49
    assert entries["mouse"]["parameters"] == network_cost(mouse).parameters
    assert entries["tiny"]["input"] == [3, 32, 32]
    assert entries["visp-only"]["populations"] < entries["no-vispor"]["populations"] < 23
    assert all(entry["description"] for entry in entries.values())
    assert len({entry["description"] for entry in entries.values()}) == 6
    table = run_mnc("specs", cwd=tmp_path)
    assert table.returncode == 0
    for name in entries:
        assert re.search(rf"^{name} ", table.stdout, re.M)


def _uncomment(text: str, first_line: str) -> str:
    """The starter text with the commented example that starts at ``first_line`` enabled."""
    lines = text.splitlines()
    index = lines.index(first_line)
    while index < len(lines) and lines[index].startswith("# "):
        lines[index] = lines[index][2:]
        index += 1
    return "\n".join(lines) + "\n"


def test_init_writes_a_variant_that_builds_the_same_network(tmp_path):
    result = run_mnc("init", "my.yaml", "--from", "mouse", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "my.yaml"
    text = written.read_text()
    assert "extends: mouse\n" in text
    base = compile_ir(DEFAULT_SPEC)
    assert compile_ir(written).content_hash == base.content_hash
    assert base.short_hash in result.stdout
    # Each commented example, once uncommented, is a valid edit: the first two show the
    # base's own values, the others remove an area and draw other masks.
    for example, changes in [
        ("# interareal:", False),
        ("# input:", False),
        ("# areas:", True),
        ("# mask:", True),
        ("# dynamics:", True),
    ]:
        edited = tmp_path / "edited.yaml"
        edited.write_text(_uncomment(text, example))
        assert (compile_ir(edited).content_hash != base.content_hash) is changes, example
    recurrent = compile_ir(edited)  # the last example: two steps and a feedback projection
    feedback = recurrent.projection("VISpor5->VISp2/3")
    assert recurrent.dynamics.steps == 2 and (feedback.delay, feedback.upsample) == (1, 2)


def test_init_keeps_an_existing_file_unless_forced(tmp_path):
    existing = tmp_path / "mine.yaml"
    existing.write_text("precious work\n")
    result = run_mnc("init", "mine.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "exists; pass --force" in result.stderr
    assert existing.read_text() == "precious work\n"
    result = run_mnc("init", "mine.yaml", "--force", "--from", "tiny", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert compile_ir(existing).content_hash == compile_ir(TINY_SPEC).content_hash


def test_init_from_a_file_extends_it_by_a_relative_path(tmp_path):
    (tmp_path / "sub").mkdir()
    result = run_mnc("init", str(tmp_path / "sub" / "v.yaml"), "--from", str(TINY_SPEC))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "sub" / "v.yaml").read_text()
    assert re.search(r"^extends: \.\./", text, re.M)
    assert compile_ir(tmp_path / "sub" / "v.yaml").content_hash == compile_ir(
        TINY_SPEC
    ).content_hash


@pytest.mark.parametrize(("output", "base"), [("my", "mouse"), ("my.yaml", "mousse")])
def test_init_refuses_a_bare_name_or_an_unknown_base(tmp_path, output, base):
    result = run_mnc("init", output, "--from", base, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("mnc init: error: ") and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("character", ["\u202e", "\x1b", "\n"])
def test_a_missing_base_is_named_with_its_unsafe_characters_escaped(tmp_path, capsys, character):
    from mnc.cli.main import main

    base = tmp_path / f"ab{character}cd.yaml"
    assert main(["init", str(tmp_path / "new.yaml"), "--from", str(base)]) == 3
    err = capsys.readouterr().err
    escaped = character.encode("unicode_escape").decode("ascii")
    assert f"ab{escaped}cd.yaml: no such file" in err, err
    assert character not in err.rstrip("\n").replace("\n  ", " ")
    assert not (tmp_path / "new.yaml").exists()


def test_messages_from_any_command_escape_unsafe_characters(tmp_path, capsys):
    from mnc.cli.main import main

    assert main(["validate", str(tmp_path / "red\x1b[31m.yaml")]) == 3  # no such spec
    assert main(["compile", str(tmp_path / "mirror\u2066.yaml")]) == 3
    err = capsys.readouterr().err
    assert "red\\x1b[31m.yaml" in err and "mirror\\u2066.yaml" in err, err
    assert "\x1b" not in err and "\u2066" not in err
