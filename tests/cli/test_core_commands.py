"""The core commands through a real subprocess, as a user runs them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import DEFAULT_SPEC, run_mnc

VARIANT = "specs/variants/no-vispor.yaml"


def test_validate_ok_and_json():
    result = run_mnc("validate", str(DEFAULT_SPEC))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "23 populations, 49 projections" in result.stdout
    data = json.loads(run_mnc("validate", str(DEFAULT_SPEC), "--json").stdout)
    assert data["valid"] is True and len(data["content_hash"]) == 64


def test_validate_reports_error_without_traceback(write_variant):
    path = write_variant({"readout": {"populations": ["VISp55"]}})
    result = run_mnc("validate", str(path))
    assert result.returncode == 3  # an invalid spec
    assert "Traceback" not in result.stderr
    assert f"{path}:" in result.stderr and "did you mean 'VISp5'" in result.stderr
    data = json.loads(run_mnc("validate", str(path), "--json").stdout)
    assert data["valid"] is False and data["problems"][0]["field"] == "readout.populations[0]"
    assert data["problems"][0]["line"] is not None


def test_emit_ir_writes_file(tmp_path):
    output = tmp_path / "mousenet.ir.json"
    result = run_mnc("compile", str(DEFAULT_SPEC), "--emit", "ir", "-o", str(output))
    assert result.returncode == 0, result.stderr
    data = json.loads(output.read_text())
    assert len(data["projections"]) == 49 and len(data["content_hash"]) == 64


def test_dump_ir_after_every_pass(tmp_path):
    result = run_mnc(
        "compile",
        str(DEFAULT_SPEC),
        "--emit",
        "ir",
        "-o",
        str(tmp_path / "x.json"),
        "--dump-ir",
        str(tmp_path / "dump"),
    )
    assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in (tmp_path / "dump").iterdir())
    assert names[0] == "00-lowered.json" and names[-1] == "07-size-readout.json"


def test_explain_population_and_projection():
    result = run_mnc("explain", str(DEFAULT_SPEC), "VISpor4")
    assert result.returncode == 0, result.stderr
    assert "floor(neurons / (height * width))" in result.stdout and "5952" in result.stdout
    result = run_mnc("explain", str(DEFAULT_SPEC), "VISp2/3->VISl4", "--json")
    data = json.loads(result.stdout)
    fields = {step["field"]: step for step in data["derivations"]}
    assert fields["kernel_size"]["value"] == 19
    assert "Knox" in " ".join(fields["sigma_px"]["sources"].values())


def test_explain_unknown_name_suggests():
    result = run_mnc("explain", str(DEFAULT_SPEC), "VISp2/3->VISI4")
    assert result.returncode == 2 and "did you mean 'VISp2/3->VISl4'" in result.stderr


def test_summary_table_and_json():
    result = run_mnc("summary", str(DEFAULT_SPEC))
    assert result.returncode == 0, result.stderr
    assert "2,519,498,752" in result.stdout and "masked MACs" in result.stdout
    data = json.loads(run_mnc("summary", str(DEFAULT_SPEC), "--json").stdout)
    assert data["dense_macs_per_image"] == 2519498752
    assert 0.03 < data["masked_macs_per_image"] / data["dense_macs_per_image"] < 0.07


def test_diff_lists_removed_area():
    result = run_mnc("diff", str(DEFAULT_SPEC), VARIANT, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data["populations"]["removed"]) == {"VISpor4", "VISpor2/3", "VISpor5"}
    assert len(data["projections"]["removed"]) == 20
    assert data["identical"] is False
    text = run_mnc("diff", str(DEFAULT_SPEC), VARIANT).stdout
    assert "- population VISpor4" in text


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_draw(tmp_path, suffix):
    output = tmp_path / f"mousenet{suffix}"
    result = run_mnc("draw", str(DEFAULT_SPEC), "-o", str(output))
    assert result.returncode == 0, result.stderr
    head = output.read_bytes()[:200]
    assert (b"<svg" in head or b"<?xml" in head) if suffix == ".svg" else head[:4] == b"\x89PNG"


def test_draw_unknown_format(tmp_path):
    result = run_mnc("draw", str(DEFAULT_SPEC), "-o", str(tmp_path / "x.bmp"))
    assert result.returncode == 2 and "unknown picture format" in result.stderr
    assert not (tmp_path / "x.bmp").exists()


def test_backends_lists_builtins():
    data = json.loads(run_mnc("backends", "--json").stdout)
    assert {"torch", "onnx"} <= {row["name"] for row in data}


def test_every_command_has_help():
    from mnc.cli.main import COMMANDS

    for name in COMMANDS:
        result = run_mnc(name, "--help")
        assert result.returncode == 0, (name, result.stderr)
        assert "usage: mnc" in result.stdout


def test_bad_argument_exits_2():
    result = run_mnc("compile", str(DEFAULT_SPEC), "--backend", "tensorflow")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_missing_spec_file():
    result = run_mnc("summary", "specs/nope.yaml")
    assert result.returncode == 3 and "specs/nope.yaml: no such file" in result.stderr
