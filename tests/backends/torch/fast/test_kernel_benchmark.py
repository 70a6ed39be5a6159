"""``benchmarks/bench_tap_alignment.py`` walks the kernel's program format: it keeps running
as that format changes (tiny spec, one round)."""

from __future__ import annotations

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
         "--rounds", "1", "--per-op"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for variant in ("as compiled", "32-byte aligned", "64-byte aligned"):
        assert any(line.strip().startswith(f"{variant}:") for line in lines), result.stdout
    convolutions = [line for line in lines if "taps per channel" in line]
    # one per population the network computes (all but the input)
    assert len(convolutions) == len(compile_ir(TINY_SPEC).populations) - 1, result.stdout
