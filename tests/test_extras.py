"""Optional dependencies: pyproject's extras, mnc/extras.py's table, and the CLI's message when
a command needs an extra that is not installed."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from mnc.extras import COMMAND_EXTRAS, EXTRA_MODULES, extra_for
from tests.conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def _requirements(extra: str) -> list[Requirement]:
    """The requirements of an extra, with the mnc[...] it names expanded."""
    found = []
    for text in EXTRAS[extra]:
        requirement = Requirement(text)
        if requirement.name == "mnc":
            for inner in sorted(requirement.extras):
                found += _requirements(inner)
        else:
            found.append(requirement)
    return found


def _names(extra: str) -> set[str]:
    return {requirement.name.lower() for requirement in _requirements(extra)}


def test_the_table_names_every_extra_but_all_test_and_docs():
    """``all``, ``test`` and ``docs`` serve no command: nothing asks for them at run time."""
    assert set(EXTRA_MODULES) == set(EXTRAS) - {"all", "test", "docs"}
    assert {extra for extras in COMMAND_EXTRAS.values() for extra in extras} <= set(EXTRAS)
    assert _names("all") == set().union(*(_names(extra) for extra in EXTRA_MODULES
                                          if extra != "allen"))
    assert _names("all") <= _names("test")


def test_each_module_of_the_table_comes_from_its_extra():
    distributions = importlib.metadata.packages_distributions()
    checked = 0
    for extra, modules in EXTRA_MODULES.items():
        for module in modules:
            for distribution in distributions.get(module, []):
                assert distribution.lower() in _names(extra), (extra, module, distribution)
                checked += 1
    if importlib.util.find_spec("rsatoolbox") is None:  # a core-only install: nothing to check
        pytest.skip("needs the extras installed (the test extra)")
    assert checked >= 8  # the test extra installs all but allensdk


def test_core_and_every_extra_but_allen_accept_numpy_2_and_pandas_2():
    requirements = [Requirement(text) for text in PROJECT["dependencies"]]
    for extra in set(EXTRAS) - {"allen"}:
        requirements += _requirements(extra)
    current = {"numpy": "2.3.0", "pandas": "2.2.3", "scipy": "1.16.0", "xarray": "2025.6.0"}
    for requirement in requirements:
        if requirement.name in current:
            assert requirement.specifier.contains(current[requirement.name]), str(requirement)


def test_onnxruntime_builds_cover_every_platform_once():
    wanted = [Requirement(text) for text in EXTRAS["onnx"] if "onnxruntime" in text]
    for system, machine in [("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "arm64"),
                            ("Darwin", "x86_64"), ("Windows", "AMD64")]:
        environment = {"platform_system": system, "platform_machine": machine, "extra": "onnx"}
        chosen = [r.name for r in wanted if r.marker is None or r.marker.evaluate(environment)]
        expected = "onnxruntime-gpu" if (system, machine) == ("Linux", "x86_64") else "onnxruntime"
        assert chosen == [expected], (system, machine)


def test_torch_range_agrees_with_the_readme():
    torch = next(Requirement(text) for text in PROJECT["dependencies"]
                 if text.startswith("torch"))
    (minimum,) = [spec.version for spec in torch.specifier if spec.operator == ">="]
    assert f"PyTorch {minimum} or newer" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("module", "command", "extra"),
    [
        ("sklearn", "train", "digits"),
        ("sklearn", "measure", "measure"),
        ("sklearn", "rsa", "neuro"),
        ("matplotlib", "draw", "plot"),
        ("matplotlib", "physiology", "neuro"),
        ("allensdk", "rsa", "allen"),
        ("onnxruntime", None, "onnx"),
        ("numpy", "compile", None),
    ],
)
def test_extra_for_prefers_the_commands_own_extra(module, command, extra):
    assert extra_for(module, command) == extra


def _site_without(folder: Path, hidden: set[str]) -> Path:
    """This environment's site-packages as links, less the top-level modules ``hidden``."""
    folder.mkdir()
    for site in {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")}:
        for entry in site.iterdir():
            if entry.name.split(".")[0] not in hidden and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def _run_without(hidden: set[str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    site = _site_without(tmp_path / "site", hidden)
    # -S: no site-packages but the linked copy, whose .pth files (the editable install) apply.
    code = ("import site, sys; site.addsitedir(sys.argv[1]); "
            "from mnc.cli.main import main; sys.exit(main(sys.argv[2:]))")
    return subprocess.run([sys.executable, "-S", "-c", code, str(site), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("hidden", "args", "message"),
    [
        ({"matplotlib"}, ["draw", "tiny", "-o", "net.svg"],
         "mnc draw: error: matplotlib is not installed; install the extra: "
         "pip install 'mnc[plot]'\n"),
        ({"onnx", "onnxruntime"}, ["compile", "tiny", "--backend", "onnx", "-o", "net.onnx"],
         "mnc compile: error: backend 'onnx' needs onnx, which is not installed; install the "
         "extra: pip install 'mnc[onnx]'\n"),
    ],
)
def test_a_missing_extra_is_one_message_naming_it(tmp_path, hidden, args, message):
    result = _run_without(hidden, tmp_path, *args)
    assert (result.returncode, result.stderr) == (2, message)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["site"]  # nothing written


def test_backends_lists_a_backend_whose_extra_is_missing_as_not_installed(tmp_path):
    result = _run_without({"onnx", "onnxruntime"}, tmp_path, "backends", "--json")
    assert result.returncode == 0, result.stderr
    status = {row["name"]: row["status"] for row in json.loads(result.stdout)}
    assert status["torch"] == "ok"
    assert status["onnx"] == ("not installed: backend 'onnx' needs onnx, which is not "
                              "installed; install the extra: pip install 'mnc[onnx]'")
    assert "warn" not in result.stderr.lower()


def test_a_failure_is_read_as_a_missing_extra_only_when_the_extra_is_missing(monkeypatch):
    from tests.conftest import missing_extra_reason

    message = "mnc train: error: needs sklearn, ...: pip install 'mnc[digits]'"
    real = importlib.util.find_spec
    assert missing_extra_reason("AssertionError: 1 == 2") is None
    if real("sklearn") is not None:  # installed: the failure is real and stays one
        assert missing_extra_reason(message) is None
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "sklearn" else real(name, *rest))
    assert missing_extra_reason(message) == "needs the digits extra (sklearn not installed)"
    error = ModuleNotFoundError("No module named 'sklearn'", name="sklearn")
    assert missing_extra_reason("", error) == "needs the digits extra (sklearn is not installed)"
