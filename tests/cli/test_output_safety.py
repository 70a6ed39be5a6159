"""``-o`` never destroys an input, and file-system failures are one message with exit 2."""

from __future__ import annotations

import os
import shutil

import pytest
import yaml

from mnc.cli.main import main
from tests.conftest import TINY_SPEC

TINY_TEXT = TINY_SPEC.read_text()


@pytest.fixture(autouse=True)
def _limits_from_the_environment():
    """Each command starts from the environment's limits, as a new process would."""
    from mnc.analysis.limits import install_limits

    install_limits(None)
    yield
    install_limits(None)


@pytest.fixture
def spec_pair(tmp_path):
    """A spec that extends a local base, as a user keeps them."""
    base = tmp_path / "base.yaml"
    base.write_text(TINY_TEXT.replace("extends: ../mouse.yaml",
                                      f"extends: {TINY_SPEC.parent.parent / 'mouse.yaml'}"))
    spec = tmp_path / "spec.yaml"
    spec.write_text("extends: base.yaml\nname: my variant\n")
    return spec, base


def _refused(capsys, argv, *expected, status=2):
    assert main(argv) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


def test_compile_output_onto_the_spec_or_its_base_is_refused(spec_pair, tmp_path, capsys):
    spec, base = spec_pair
    before = (spec.read_text(), base.read_text())
    _refused(capsys, ["compile", str(spec), "--emit", "ir", "-o", str(spec)], str(spec), "input")
    _refused(capsys, ["compile", str(spec), "--emit", "ir", "-o", str(base)], str(base), "input")
    os.link(base, tmp_path / "hard-link.yaml")
    _refused(capsys, ["compile", str(spec), "--emit", "ir", "-o", str(tmp_path / "hard-link.yaml")],
             "input")
    (tmp_path / "sym-link.yaml").symlink_to(spec)
    _refused(capsys, ["compile", str(spec), "--emit", "ir", "-o", str(tmp_path / "sym-link.yaml")],
             "input")
    assert (spec.read_text(), base.read_text()) == before


def test_compile_output_onto_the_weights_or_class_names_is_refused(spec_pair, tmp_path, capsys):
    pytest.importorskip("onnx", reason="--class-names belongs to the onnx backend (onnx extra)")
    spec, _ = spec_pair
    names = tmp_path / "names.txt"
    names.write_text("\n".join(str(digit) for digit in range(10)) + "\n")
    _refused(capsys, ["compile", str(spec), "--emit", "ir", "--class-names", str(names),
                      "-o", str(names)], "input")
    assert names.read_text().startswith("0\n1\n")


def test_draw_output_onto_the_spec_is_refused(tmp_path, capsys):
    spec = tmp_path / "spec.svg"  # odd, but a path all the same
    shutil.copy(TINY_SPEC, spec)
    spec.write_text(TINY_TEXT.replace("extends: ../mouse.yaml",
                                      f"extends: {TINY_SPEC.parent.parent / 'mouse.yaml'}"))
    before = spec.read_text()
    _refused(capsys, ["draw", str(spec), "-o", str(spec)], "input")
    assert spec.read_text() == before


@pytest.mark.parametrize("command", [["compile", str(TINY_SPEC), "--emit", "ir"],
                                     ["draw", str(TINY_SPEC)], ["plot", "run"]])
def test_empty_output_name_is_refused(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main([*command, "-o", ""])
    assert caught.value.code == 2
    assert "empty" in capsys.readouterr().err


def test_output_that_is_a_folder_is_one_message(tmp_path, capsys):
    _refused(capsys, ["compile", str(TINY_SPEC), "--emit", "ir", "-o", str(tmp_path)],
             str(tmp_path), "folder")


def test_full_disk_is_one_message_and_the_old_file_stays(tmp_path, capsys, monkeypatch):
    import errno

    output = tmp_path / "ir.json"
    output.write_text("old")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    _refused(capsys, ["compile", str(TINY_SPEC), "--emit", "ir", "-o", str(output)],
             str(output), "No space left")
    assert output.read_text() == "old"


def test_writing_to_dev_full_is_one_message(capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    _refused(capsys, ["compile", str(TINY_SPEC), "--emit", "ir", "-o", "/dev/full"], "/dev/full")


def test_name_too_long_is_one_message(tmp_path, capsys):
    _refused(capsys, ["compile", str(TINY_SPEC), "--emit", "ir", "-o",
                      str(tmp_path / ("x" * 300 + ".json"))], "name too long")


def test_dump_ir_naming_a_file_is_one_message(tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    _refused(capsys, ["compile", str(TINY_SPEC), "--dump-ir", str(existing)], str(existing),
             "folder")
    assert existing.read_text() == "mine"


@pytest.mark.parametrize("flag", ["--max-parameters", "--max-activation-mb"])
@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "-inf", "many"])
def test_limit_flags_refuse_zero_negative_nan_and_inf(flag, value, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["compile", str(TINY_SPEC), flag, value])
    assert caught.value.code == 2
    assert flag in capsys.readouterr().err


def test_max_parameters_can_raise_the_limit_as_its_message_says(capsys, monkeypatch):
    monkeypatch.setenv("MNC_MAX_PARAMETERS", "1000")
    err = _refused(capsys, ["compile", str(TINY_SPEC)], "--max-parameters")
    assert "1,000" in err
    assert main(["compile", str(TINY_SPEC), "--emit", "ir", "--max-parameters", "10000000"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-3"])
def test_limit_environment_variables_refuse_nan_inf_and_non_positive(value, capsys, monkeypatch):
    monkeypatch.setenv("MNC_MAX_ACTIVATION_MB", value)
    _refused(capsys, ["validate", str(TINY_SPEC)], "MNC_MAX_ACTIVATION_MB")


def test_deeply_nested_yaml_spec_is_one_message(tmp_path, capsys):
    spec = tmp_path / "deep.yaml"
    spec.write_text(yaml.safe_dump({"name": "x"}) + "description: " + "[" * 3000 + "]" * 3000)
    _refused(capsys, ["validate", str(spec)], str(spec), "nested", status=3)  # invalid spec


def test_an_os_error_nobody_caught_is_still_one_message(capsys, monkeypatch):
    import errno

    import mnc.compiler

    def unreadable(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/locked/spec.yaml")

    monkeypatch.setattr(mnc.compiler, "compile_ir", unreadable)
    err = _refused(capsys, ["compile", str(TINY_SPEC)], "/srv/locked/spec.yaml",
                   "Permission denied")
    assert err.startswith("mnc compile: error: ")


def test_bench_output_onto_a_base_spec_is_refused_before_timing(spec_pair, capsys):
    spec, base = spec_pair
    before = base.read_text()
    _refused(capsys, ["bench", str(spec), "--quick", "--no-onnx", "-o", str(base)], "input")
    assert base.read_text() == before


def test_a_limit_message_names_only_flags_the_command_has(capsys, monkeypatch):
    monkeypatch.setenv("MNC_MAX_PARAMETERS", "1000")
    err = _refused(capsys, ["validate", str(TINY_SPEC)], "MNC_MAX_PARAMETERS")
    assert "--max-parameters" not in err  # validate has no such flag
    err = _refused(capsys, ["compile", str(TINY_SPEC)], "--max-parameters")


COUNT_FLAGS = [("predict", "--batch-size"), ("bench", "--batch"),
               ("bench", "--rounds"), ("rsa", "--max-units"), ("rsa", "--splits"),
               ("physiology", "--batch-size"), ("physiology", "--window"),
               ("measure connectome", "--smoothing-mm")]


@pytest.mark.parametrize(("command", "flag"), COUNT_FLAGS)
@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf"])
def test_count_and_size_flags_refuse_zero_negative_nan_and_inf(command, flag, value, capsys):
    with pytest.raises(SystemExit) as caught:
        main([*command.split(), flag, value])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and "positive" in err, err


def test_init_over_its_own_base_is_refused_and_the_base_kept(spec_pair, capsys):
    spec, base = spec_pair
    before = base.read_text()
    _refused(capsys, ["init", str(base), "--from", str(spec), "--force"], "input")
    _refused(capsys, ["init", str(spec), "--from", str(spec), "--force"], "input")
    assert base.read_text() == before
