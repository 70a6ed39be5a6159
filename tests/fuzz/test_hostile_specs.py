"""Hostile and broken specs: one clear message, exit code 3 (invalid spec), no traceback,
bounded time/memory.

The corpus under tests/fuzz/corpus holds hand-made hostile files; test_spec_mutations.py adds
mutations of the default spec and random text (hypothesis).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, cap_memory

CORPUS = sorted((Path(__file__).parent / "corpus").iterdir())
MEMORY_LIMIT = 2 * 2**30


def _limit_memory() -> None:
    cap_memory(MEMORY_LIMIT)


@pytest.mark.parametrize("path", CORPUS, ids=[path.name for path in CORPUS])
def test_corpus_file_fails_cleanly(path):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "mnc", "validate", str(path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60,
                            preexec_fn=_limit_memory)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, (result.stdout, result.stderr)  # an invalid spec
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("mnc validate: error: "), result.stderr
    assert str(path.name) in result.stderr or "mouse.yaml" in result.stderr
    assert elapsed < 20
    assert not Path("/tmp/mnc-pwned").exists()
