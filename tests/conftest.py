"""Shared fixtures: paths of the shipped specs and a writer for spec variants."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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
