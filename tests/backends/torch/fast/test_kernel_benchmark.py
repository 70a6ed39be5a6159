"""The kernel benchmarks keep running as the program format changes (tiny spec, one round):
``bench_tap_alignment.py`` walks it, ``bench_batch_major.py`` times one op of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from mnc.compiler import compile_ir
from mnc_backends.torch.fast import native
from tests.conftest import ROOT, TINY_SPEC

pytestmark = [pytest.mark.torch, pytest.mark.skipif(
    not native.available(), reason="sparse kernel not built")]


def test_alignment_benchmark_times_every_variant_and_each_convolution():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_tap_alignment.py"), str(TINY_SPEC),
         "--rounds", "1", "--per-op", "--fold", "2048"], capture_output=True, text=True,
        timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for variant in ("as compiled", "32-byte aligned", "64-byte aligned", "folded into 2048"):
        assert any(line.strip().startswith(f"{variant}:") for line in lines), result.stdout
    convolutions = [line for line in lines if "taps per channel" in line]
    # one per population the network computes (all but the input)
    assert len(convolutions) == len(compile_ir(TINY_SPEC).populations) - 1, result.stdout


@pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None, reason="no C compiler")
def test_batch_major_benchmark_checks_its_sums_and_times_each_block():
    """``benchmarks/bench_batch_major.py`` builds its prototype, checks its sums against
    float64 numpy (it exits otherwise) and times it beside the kernel's own op."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_batch_major.py"), str(TINY_SPEC),
         "--rounds", "1"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for population in ("VISp2/3", "VISl4"):
        assert any(line.startswith(f"{population}:") for line in lines), result.stdout
    assert sum("kernel, one image at a time" in line for line in lines) == 2, result.stdout
    # three block shapes x the group sizes {4, 16, all planes} per population
    assert sum("batch-major" in line for line in lines) >= 2 * 3 * 2, result.stdout
