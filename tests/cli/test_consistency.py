"""The same conventions in every command: ``--json`` is a flag printing to standard output,
list options take one comma-separated value, long runs say what they start, and a requested
stop says "stopped"."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnc.cli.main import COMMANDS, build_parser, main
from tests.conftest import ROOT, TINY_SPEC, run_mnc


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser(name)
    choices = next(action for action in parser._actions  # noqa: SLF001 - argparse keeps them here
                   if isinstance(action, argparse._SubParsersAction)).choices  # noqa: SLF001
    return choices[name]


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    found = []
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001 - measure's commands
            for sub in action.choices.values():
                found.extend(_options(sub))
        elif action.option_strings:
            found.append(action)
    return found


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_json_is_a_flag_and_no_option_takes_a_variable_number_of_values(command):
    for action in _options(_subparser(command)):
        assert action.nargs not in ("+", "*"), f"mnc {command} {action.option_strings[0]} " \
            "would swallow a positional after it"
        if "--json" in action.option_strings:
            assert "FILE" not in (action.help or "") and "standard output" in action.help \
                or action.nargs == 0, f"mnc {command} --json must print JSON, not take a file"


def test_list_options_take_commas_and_leave_the_spec_alone():
    pytest.importorskip("torch")
    parser = build_parser("rsa")
    args = parser.parse_args(["rsa", "--areas", "VISp,VISl", "specs/mouse.yaml", "--weights",
                              "untrained", "--recordings", "r.npz", "-o", "out",
                              "--depths", "175,275", "--depths", "375", "--cre-lines",
                              "Cux2-CreERT2", "--methods", "pearson", "--regressions", "none"])
    assert args.spec == "specs/mouse.yaml"
    assert args.areas == ["VISp", "VISl"] and args.depths == [175, 275, 375]
    assert args.cre_lines == ["Cux2-CreERT2"] and args.methods == ["pearson"]
    defaults = parser.parse_args(["rsa", "s.yaml", "--weights", "w", "--recordings", "r",
                                  "-o", "o"])
    assert defaults.areas is None and defaults.methods is None


@pytest.mark.parametrize(("argv", "message"), [
    (["rsa", "s.yaml", "--weights", "w", "--recordings", "r", "-o", "o", "--methods", "kendall"],
     "'kendall' is not one of spearman, pearson"),
    (["physiology", "s.yaml", "--weights", "w", "--recordings", "r", "-o", "o", "--depths",
      "deep"], "expected numbers, not 'deep'"),
])
def test_a_bad_list_item_is_one_clear_message(argv, message, capsys):
    pytest.importorskip("torch")
    with pytest.raises(SystemExit) as exit_info:
        build_parser(argv[0]).parse_args(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_bench_json_prints_and_refuses_the_old_file_form(tmp_path):
    result = run_mnc("bench", "--quick", "--json", str(tmp_path / "bench.json"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--json takes no file now" in result.stderr
    assert f"-o {tmp_path / 'bench.json'}" in result.stderr
    assert not (tmp_path / "bench.json").exists()
    parser = build_parser("bench")
    args = parser.parse_args(["bench", "--json", "specs/variants/tiny.yaml", "--quick"])
    assert args.json is True and args.spec_after_json == Path("specs/variants/tiny.yaml")
    args = parser.parse_args(["bench", "--json", "-o", "results.json"])
    assert args.json is True and args.output == Path("results.json")


def test_sigterm_is_reported_as_stopped_with_status_143(monkeypatch, capsys):
    from mnc.cli import validate

    def terminated(args: argparse.Namespace) -> int:
        signal.raise_signal(signal.SIGTERM)
        return 0

    monkeypatch.setattr(validate, "run", terminated)
    assert main(["validate", str(TINY_SPEC)]) == 143
    err = capsys.readouterr().err
    assert err.strip() == "mnc validate: stopped by SIGTERM"


def test_comparison_start_line(capsys):
    pytest.importorskip("torch")
    from mnc.cli.neuro_options import announce_comparison

    args = build_parser("physiology").parse_args(
        ["physiology", "specs/mouse.yaml", "--weights", "untrained", "--recordings", "r.npz",
         "-o", "out", "--areas", "VISp,VISl"])
    announce_comparison("physiology", args)
    assert capsys.readouterr().err == (
        "mnc physiology: comparing specs/mouse.yaml (weights untrained) with r.npz: areas "
        "VISp,VISl, Cre lines all, depths all; writing to out\n")


@pytest.mark.torch
@pytest.mark.slow
def test_train_start_line_stop_and_resume(tmp_path, capsys):
    """With stderr in a file: the start line comes first; Ctrl-C says "stopped" (no
    "error:") with status 130; --resume names the checkpoint, epoch and step."""
    pytest.importorskip("torch")
    from mnc_backends.torch.training import checkpoint

    folder = tmp_path / "run"
    log = tmp_path / "stderr.txt"
    command = [sys.executable, "-m", "mnc", "train", str(TINY_SPEC), "-o", str(folder),
               "--data", "digits", "--epochs", "1", "--batch-size", "8",
               "--max-steps-per-epoch", "12", "--val-fraction", "0.05", "--device", "cpu",
               "--workers", "0", "--checkpoint-every-steps", "1", "--no-progress"]
    with log.open("w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr,
                                   text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            deadline = time.monotonic() + 240
            while process.poll() is None and not (folder / "last.pt").exists():
                assert time.monotonic() < deadline, "no checkpoint within 240 s"
                time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    lines = log.read_text().splitlines()
    assert process.returncode == 130, lines
    assert lines[0] == (f"mnc train: training {TINY_SPEC} on digits: 1 epoch, global batch 8, "
                        f"device cpu, 1 process; run folder {folder}")
    assert lines[-1].startswith("mnc train: stopped by SIGINT at epoch 1 step ")
    assert "error" not in log.read_text()

    steps = int(checkpoint.load_checkpoint(folder / "last.pt")["step"])
    assert main(["train", "--resume", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["steps"] == 12
    assert (f"mnc train: resuming from {folder / 'last.pt'} (saved after {steps} steps): "
            f"continuing epoch 1 of 1 after its step {steps}") in captured.err.splitlines()

    assert main(["evaluate", str(folder / "last.pt"), "--data", "digits", "--device", "cpu",
                 "--workers", "0", "--val-fraction", "0.05"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == (
        f"mnc evaluate: {folder / 'last.pt'} on the val split of digits, device cpu")
