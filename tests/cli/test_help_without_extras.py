"""Every command's ``--help`` works with only the core install: no extra is imported to list
options, so a user can read what to install before installing it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnc.cli.main import COMMANDS
from mnc.extras import EXTRA_MODULES
from tests.conftest import ROOT

BLOCKED = sorted({module for modules in EXTRA_MODULES.values() for module in modules})

# Makes every extra's modules unimportable, as in a core-only install.
WITHOUT_EXTRAS = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from mnc.cli.main import main
sys.exit(main([{command!r}, "--help"]))
"""


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_needs_no_extra(command):
    code = WITHOUT_EXTRAS.format(blocked=BLOCKED, command=command)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"usage: mnc {command}" in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize("command, extra", [("rsa", "neuro"), ("physiology", "neuro")])
def test_a_command_without_its_extra_names_it_and_creates_nothing(command, extra, tmp_path):
    code = (f"import sys\nfor name in {BLOCKED!r}: sys.modules[name] = None\n"
            f"import importlib.util\nreal = importlib.util.find_spec\n"
            f"importlib.util.find_spec = lambda name, *a: None if name in {BLOCKED!r} "
            f"else real(name, *a)\n"
            f"from mnc.cli.main import main\n"
            f"sys.exit(main([{command!r}, 'tiny', '--weights', 'untrained', '--recordings', "
            f"'synthetic', '-o', {str(tmp_path / 'out')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"pip install 'mnc[{extra}]'" in result.stderr
    assert not (tmp_path / "out").exists()
