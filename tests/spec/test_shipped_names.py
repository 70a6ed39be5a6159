"""Shipped specs by name: `mouse`, `tiny`, ... wherever a spec file goes, `extends` included."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnc.compiler import compile_ir
from mnc.errors import SpecError
from mnc.spec.shipped import UnknownSpecName, is_spec_name, shipped_specs
from tests.conftest import ALL_SPECS, DEFAULT_SPEC, SPECS, TINY_SPEC, run_mnc

NAMES = ["mouse", "feedback", "no-vispor", "tiny", "tiny-feedback", "visp-only"]


def test_every_shipped_file_has_one_name():
    specs = shipped_specs()
    assert list(specs) == NAMES  # the default first, then the variants
    assert sorted(spec.path.resolve() for spec in specs.values()) == sorted(
        path.resolve() for path in ALL_SPECS
    )


@pytest.mark.parametrize("name", NAMES)
def test_a_name_compiles_to_the_same_network_as_its_file(name):
    path = SPECS / f"{name}.yaml" if name == "mouse" else SPECS / "variants" / f"{name}.yaml"
    assert compile_ir(name).content_hash == compile_ir(path).content_hash


@pytest.mark.parametrize(
    ("text", "is_name"),
    [
        ("mouse", True),
        ("no-vispor", True),
        ("visp_only2", True),
        ("mouse.yaml", False),
        ("./mouse", False),
        ("variants/tiny", False),
        ("specs\\mouse.yaml", False),
        ("", False),
    ],
)
def test_the_rule_reads_the_text_only(text, is_name):
    assert is_spec_name(text) is is_name


def test_a_local_file_named_like_a_shipped_spec_needs_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mouse").write_text("not: [a spec\n")
    assert compile_ir("mouse").content_hash == compile_ir(DEFAULT_SPEC).content_hash
    with pytest.raises(SpecError, match="mouse"):
        compile_ir("./mouse")
    with pytest.raises(SpecError):  # a Path is always a file path
        compile_ir(Path("mouse"))


def test_extends_accepts_a_name_from_any_folder(tmp_path):
    variant = tmp_path / "deep" / "my.yaml"
    variant.parent.mkdir()
    variant.write_text("extends: tiny\nname: mine\nmask: {seed: 3}\n")
    tiny = compile_ir(TINY_SPEC)
    mine = compile_ir(variant)
    assert mine.input == tiny.input and mine.mask.seed == 3
    variant.write_text("extends: [mouse]\nname: mine\n")
    assert compile_ir(variant).content_hash == compile_ir(DEFAULT_SPEC).content_hash


def test_an_unknown_name_in_extends_points_at_the_line(tmp_path):
    variant = tmp_path / "my.yaml"
    variant.write_text("name: mine\nextends: mousse\n")
    with pytest.raises(SpecError) as caught:
        compile_ir(variant)
    problem = caught.value.problems[0]
    assert (problem.location.file, problem.location.line) == (str(variant), 2)
    assert "no shipped spec is named 'mousse' (did you mean 'mouse'?)" in problem.message


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(UnknownSpecName,
                       match="did you mean 'tiny'.*mouse, feedback, no-vispor, tiny"):
        compile_ir("tinny")


def test_a_missing_file_named_after_a_shipped_spec_says_how_to_write_it(tmp_path):
    result = run_mnc("validate", "mouse.yaml", cwd=tmp_path)
    assert result.returncode == 3
    assert "the shipped spec of that name is written 'mouse'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_line_takes_names(tmp_path):
    result = run_mnc("validate", "visp-only", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "MouseNet VISp only" in result.stdout
    result = run_mnc("validate", "vispor", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no shipped spec is named 'vispor'" in result.stderr
