"""Command-line manners: --verbose after the command, a bad flag shows the command's usage,
usage errors and invalid specs exit with distinct documented statuses, ``diff --exit-code``,
factories found in the working folder, and only model builders behind ``torchvision:``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnc.cli.main import EXIT_STATUSES, main
from mnc.errors import SpecError
from tests.conftest import ROOT, TINY_SPEC, run_mnc

BAD_SPEC = "name: broken\nbogus: 1\n"


@pytest.fixture
def bad_spec(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SPEC)
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_before_or_after_the_command_shows_the_traceback(bad_spec, where):
    argv = (
        ["--verbose", "validate", str(bad_spec)]
        if where == "before"
        else ["validate", str(bad_spec), "--verbose"]
    )
    with pytest.raises(SpecError):
        main(argv)


def test_a_bad_flag_prints_the_command_usage():
    result = run_mnc("validate", "tiny", "--bogus")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: mnc validate")
    assert "mnc validate: error: unrecognized arguments: --bogus" in result.stderr


def test_invalid_spec_and_usage_error_have_distinct_documented_statuses(bad_spec):
    assert main(["validate", str(bad_spec)]) == 3
    assert main(["compile", str(bad_spec)]) == 3
    assert main(["explain", "tiny", "VISx9"]) == 2  # a usage error: no such population
    help_text = run_mnc("--help").stdout
    readme = (ROOT / "docs" / "commands.md").read_text()  # the guide to the commands
    for code, meaning in EXIT_STATUSES.items():
        assert f"{code} {meaning.split(':')[0]}" in " ".join(help_text.split())
        assert f"| {code} |" in readme


def test_diff_exit_code_says_whether_the_networks_differ():
    assert main(["diff", "tiny", str(TINY_SPEC), "--exit-code"]) == 0
    assert main(["diff", "tiny", "visp-only", "--exit-code"]) == 1
    assert main(["diff", "tiny", "visp-only"]) == 0


def test_a_factory_in_the_working_folder_is_found(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from mnc.neuro.any_model import build_module

    (tmp_path / "my_cnn_factory.py").write_text(
        "import torch\n\ndef make():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        sys, "path", [entry for entry in sys.path if entry not in ("", str(tmp_path))]
    )
    module = build_module("module:my_cnn_factory:make")
    assert isinstance(module, torch.nn.Sequential)
    assert str(tmp_path) not in sys.path  # the working folder is not left on the path


LEAVE = """
import os
import subprocess
import sys
from mnc.cli.common import leave_torchrun_world
print("the summary, still in stdout's buffer")
print("a last line on stderr", file=sys.stderr)
code = leave_torchrun_world(3)
print("returned", code)
"""


@pytest.mark.parametrize("world_size", [None, "1", "2"])
def test_a_torchrun_rank_of_a_larger_world_leaves_at_once_with_its_output(world_size):
    # (os._exit skips the interpreter's teardown, where gloo's threads aborted a rank now and
    # then; what was printed must still come out, and the exit status be the command's)
    env = {key: value for key, value in os.environ.items()
           if key not in ("WORLD_SIZE", "PYTHONUNBUFFERED")}  # stdout block-buffered
    if world_size is not None:
        env["WORLD_SIZE"] = world_size
    result = subprocess.run([sys.executable, "-c", LEAVE], env=env, capture_output=True,
                            text=True, timeout=120)
    assert "the summary, still in stdout's buffer" in result.stdout
    assert "a last line on stderr" in result.stderr
    if world_size == "2":
        assert result.returncode == 3 and "returned" not in result.stdout
    else:
        assert result.returncode == 0 and "returned 3" in result.stdout
