"""Shared fixtures: paths of the shipped specs and a writer for spec variants."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
DEFAULT_SPEC = SPECS / "mouse.yaml"
TINY_SPEC = SPECS / "variants" / "tiny.yaml"
REFERENCE = ROOT.parent / "shared" / "reference"
ALL_SPECS = sorted(SPECS.rglob("*.yaml"))


@pytest.fixture
def write_variant(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec that extends the default spec with the given overrides."""

    def write(
        overrides: dict | None = None,
        name: str = "variant.yaml",
        text: str | None = None,
        base: Path = DEFAULT_SPEC,
    ) -> Path:
        path = tmp_path / name
        if text is None:
            text = yaml.safe_dump({"extends": str(base), **(overrides or {})}, sort_keys=False)
        path.write_text(text)
        return path

    return write


def run_mnc(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "mnc", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def cap_memory(limit_bytes: int) -> None:
    """Cap this process's data memory (heap and anonymous mappings: what a runaway reader or
    allocation grows), for ``subprocess.run(preexec_fn=...)``.

    Not the address space (RLIMIT_AS): the CUDA build of torch maps gigabytes of library code
    at import, so under a 2 GiB address-space cap it cannot even be imported, GPU or not.
    """
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))


# --- tests that need an extra ------------------------------------------------------------------
# Modules tests use that no extra of mnc brings, by the extra of pyproject.toml that does.
TEST_EXTRA_MODULES = {"hypothesis": "test", "jsonschema": "test", "build": "test",
                      "torchvision": None}
_EXTRA_NAMED = re.compile(r"pip install '?mnc\[(\w+)\]")
_MODULE_NAMED = re.compile(r"No module named '([\w.]+)'")


def missing_extra_reason(text: str, error: BaseException | None = None) -> str | None:
    """Why a failure only shows that an optional package is not installed, or None.

    Used on failures alone: ``error`` (an exception the test raised) or ``text`` (the report,
    with the output of a subprocess the test ran) names a module of an extra, or says
    ``pip install 'mnc[EXTRA]'``, and that module or extra is indeed missing here. With every
    extra installed this never applies, so it hides nothing there.
    """
    from mnc.extras import EXTRA_MODULES

    def missing(module: str) -> bool:
        return importlib.util.find_spec(module) is None

    modules = []
    if isinstance(error, ModuleNotFoundError) and error.name:
        modules.append(error.name.partition(".")[0])
    modules += [name.partition(".")[0] for name in _MODULE_NAMED.findall(text)]
    for module in modules:
        extras = [extra for extra, names in EXTRA_MODULES.items() if module in names]
        if extras and missing(module):
            return f"needs the {extras[0]} extra ({module} is not installed)"
        if module in TEST_EXTRA_MODULES and missing(module):
            extra = TEST_EXTRA_MODULES[module]
            return f"needs {module}" + (f" (the {extra} extra)" if extra else "")
    for extra in _EXTRA_NAMED.findall(text):
        absent = [module for module in EXTRA_MODULES.get(extra, ()) if missing(module)]
        if absent:
            return f"needs the {extra} extra ({', '.join(absent)} not installed)"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """A test that fails only because an extra is missing (a core-only install) is reported
    as skipped, naming the extra; the full install runs it."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or call.excinfo is None:
        return
    text = report.longreprtext + "".join(content for _, content in report.sections)
    reason = missing_extra_reason(text, call.excinfo.value)
    if reason is not None:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {reason}")
