"""``mnc rsa`` and ``mnc physiology``: in-process with a fake model, and end to end."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mnc.cli import physiology as physiology_command
from mnc.cli import rsa as rsa_command
from tests.conftest import ROOT, TINY_SPEC

pytestmark = pytest.mark.neuro
pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")


def _parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"mnc {module.NAME}")
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    args.command = module.NAME
    args.verbose = False
    return args


def test_rsa_command_prints_best_populations(fake_loaded, boc_cache, tmp_path, monkeypatch,
                                             capsys) -> None:
    monkeypatch.setattr("mnc.neuro.model_features.load_model",
                        lambda spec, weights, seed: fake_loaded)
    args = _parse(rsa_command, ["specs/mouse.yaml", "--weights", "untrained",
                                "--boc-cache", str(boc_cache), "-o", str(tmp_path / "o"),
                                "--bootstrap", "4", "--splits", "2", "--regressions", "ridge",
                                "--areas", "VISp,VISl"])
    assert rsa_command.run(args) == 0
    out = capsys.readouterr().out
    assert "best population" in out and "VISp Cux2 L2/3" in out and "VISam" not in out
    args.json = True
    assert rsa_command.run(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scores_cached"] is True
    assert {row["region"] for row in report["best"]} == {"VISl Cux2 L2/3", "VISp Cux2 L2/3",
                                                         "VISp Rorb L4"}


def test_physiology_command(fake_loaded, boc_cache, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("mnc.neuro.model_features.load_model",
                        lambda spec, weights, seed: fake_loaded)
    args = _parse(physiology_command, ["specs/mouse.yaml", "--weights", "untrained",
                                       "--boc-cache", str(boc_cache), "-o", str(tmp_path),
                                       "--areas", "VISal", "--json"])
    assert physiology_command.run(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert {row["population"] for row in report["ir_mapped"]} == {"VISal5"}


def test_missing_cache_is_one_clear_error(tmp_path, monkeypatch, fake_loaded) -> None:
    from mnc.errors import UserFileError

    monkeypatch.setattr("mnc.neuro.model_features.load_model",
                        lambda spec, weights, seed: fake_loaded)
    args = _parse(rsa_command, ["specs/mouse.yaml", "--weights", "untrained", "--boc-cache",
                                str(tmp_path / "nothing"), "-o", str(tmp_path / "o")])
    with pytest.raises(UserFileError, match="lacks the folder.*get_experiment_containers"):
        rsa_command.run(args)


def _torch_backend_ready() -> bool:
    try:
        import mnc

        mnc.compile(str(TINY_SPEC), backend="torch")
    except Exception:  # any failure means the backend has not landed; the test skips
        return False
    return True


def _command(name: str) -> list[str]:
    """``python -m mnc NAME`` once registered, else the module's run() through argparse."""
    from mnc.cli.main import COMMANDS

    if name in COMMANDS:
        return [sys.executable, "-m", "mnc", name]
    shim = ("import argparse, sys; from mnc.cli import {0} as m; p = argparse.ArgumentParser();"
            " m.add_arguments(p); a = p.parse_args(sys.argv[1:]); sys.exit(m.run(a))")
    return [sys.executable, "-c", shim.format(name)]


@pytest.mark.torch
@pytest.mark.slow
def test_end_to_end_with_the_tiny_spec(boc_cache: Path, tmp_path: Path) -> None:
    if not _torch_backend_ready():
        pytest.skip("the torch backend (mnc.compile(..., backend='torch')) is not available")
    common = [str(TINY_SPEC), "--weights", "untrained", "--boc-cache", str(boc_cache),
              "--splits", "2"]
    rsa_run = subprocess.run([*_command("rsa"), *common, "--bootstrap", "4", "--methods",
                              "spearman", "--regressions", "ridge", "--areas", "VISp,VISl",
                              "-o", str(tmp_path / "rsa"), "--json"],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert rsa_run.returncode == 0, rsa_run.stderr
    report = json.loads(rsa_run.stdout)
    assert report["features_cached"] is False
    assert (tmp_path / "rsa" / "ssm_heatmap_spearman.png").stat().st_size > 0
    phys_run = subprocess.run([*_command("physiology"), *common, "--areas", "VISp",
                               "-o", str(tmp_path / "phys"), "--cache-dir",
                               str(tmp_path / "rsa" / "cache")],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert phys_run.returncode == 0, phys_run.stderr
    assert "KS" in phys_run.stdout
    assert (tmp_path / "phys" / "physiology.csv").stat().st_size > 0


@pytest.mark.parametrize("command", ["rsa", "physiology"])
def test_an_output_folder_over_the_inputs_is_refused(command, tmp_path, capsys) -> None:
    from mnc.cli.main import main

    recordings = tmp_path / "data" / "r.npz"
    recordings.parent.mkdir()
    recordings.write_bytes(b"recordings")
    weights = tmp_path / "run" / "best.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    cache = tmp_path / "cache"
    cache.mkdir()
    base = [command, "specs/mouse.yaml", "--recordings", str(recordings)]
    refused = [
        ([*base, "--weights", "untrained", "-o", str(recordings)], "is a file"),
        ([*base, "--weights", "untrained", "-o", str(recordings.parent)], "holds the input of "
                                                                          "--recordings"),
        ([*base, "--weights", str(weights), "-o", str(weights.parent)], "holds the input of "
                                                                        "--weights"),
        ([*base, "--weights", "untrained", "-o", str(cache), "--cache-dir", str(cache)],
         "is the input of --cache-dir"),
        ([*base, "--weights", "untrained", "-o", str(cache / "out"), "--cache-dir", str(cache)],
         "lies inside the input of --cache-dir"),
        ([command, "specs/mouse.yaml", "--boc-cache", str(cache), "--weights", "untrained",
          "-o", str(cache / "o")], "lies inside the input of --boc-cache"),
    ]
    for argv, relation in refused:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"-o {argv[argv.index('-o') + 1]}: " in err and relation in err, err
        assert "Traceback" not in err
    assert recordings.read_bytes() == b"recordings" and weights.read_bytes() == b"weights"
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["best.pt", "cache", "data",
                                                                 "r.npz", "run"]


def test_paths_with_unsafe_characters_are_announced_escaped(tmp_path, capsys) -> None:
    from mnc.cli.main import main

    recordings = tmp_path / "r\u202ea.npz"
    assert main(["rsa", "specs/variants/tiny.yaml", "--weights", "untrained", "--recordings",
                 str(recordings), "-o", str(tmp_path / "o\x1b[2J")]) == 2
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "\u202e" not in printed and "\x1b" not in printed, printed
    assert "r\\u202ea.npz" in printed and "o\\x1b[2J" in printed, printed
