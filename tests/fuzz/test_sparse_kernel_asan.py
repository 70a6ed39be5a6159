"""The sparse kernel under AddressSanitizer, fed mutated IRs, masks, weights and programs.

The kernel is compiled again from its source with the package's own build flags plus
``-fsanitize=address`` and loaded in a subprocess (``MNC_SPARSE_LIBRARY``, with the ASan
runtime preloaded). Every fuzz case must end in a clear refusal before the kernel runs or in
output equal to the plain path (``tests/fuzz/sparse_fuzz_worker.py``), and no access may
leave its array. A canary run, which feeds the kernel an out-of-bounds program past the
check, shows that the instrumented build is the one loaded.

Skipped without a C compiler or the ASan runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.torch, pytest.mark.slow]

SOURCE = ROOT / "backends" / "torch" / "fast" / "_native" / "sparse_taps.c"
CASES = 40
ASAN_FLAGS = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g"]


def _build_flags() -> tuple[list[str], list[str]]:
    """(compile, link) flags of the kernel's extension module in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [module] = [ext for ext in project["tool"]["setuptools"]["ext-modules"]
                if ext["name"].endswith("_sparse_taps")]
    return module.get("extra-compile-args", []), module.get("extra-link-args", [])


@pytest.fixture(scope="module")
def asan_kernel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    runtime = subprocess.run([compiler, "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not runtime or not Path(runtime).is_file():
        pytest.skip("no AddressSanitizer runtime (libasan.so)")
    compile_flags, link_flags = _build_flags()
    library = tmp_path_factory.mktemp("asan") / "sparse_taps_asan.so"
    command = [compiler, "-shared", "-fPIC", *compile_flags, *ASAN_FLAGS,
               f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(library),
               *link_flags]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"the kernel does not build with AddressSanitizer: {built.stderr[-500:]}")
    return {**os.environ, "LD_PRELOAD": runtime, "MNC_SPARSE_LIBRARY": str(library),
            "ASAN_OPTIONS": "detect_leaks=0", "OMP_NUM_THREADS": "2"}


def _worker(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.fuzz.sparse_fuzz_worker", *args],
                          capture_output=True, text=True, cwd=ROOT, env=environment,
                          timeout=600)


def test_canary_out_of_bounds_program_is_caught(asan_kernel):
    result = _worker(asan_kernel, "--canary")
    assert result.returncode != 0
    assert "ERROR: AddressSanitizer" in result.stderr, result.stderr[-2000:]
    assert "sparse_taps_asan.so" in result.stderr or "kernel_body.h" in result.stderr


def test_fuzzed_networks_are_refused_or_equal_to_plain_and_memory_safe(asan_kernel):
    result = _worker(asan_kernel, "--cases", str(CASES))
    assert "AddressSanitizer" not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mismatch_count"] == 0, report["mismatches"]
    outcomes = report["outcomes"]
    assert sum(outcomes.values()) == CASES
    ran = sum(count for name, count in outcomes.items()
              if name.endswith("equal to plain") or name.endswith("accepted and run"))
    refused = CASES - ran
    assert ran >= CASES // 4 and refused >= CASES // 4, outcomes


TRAINING_SCRIPT = """
import torch, torch.nn.functional as F
from mnc.compiler import compile_ir
from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.sparse_train import SparseTrainer
from mnc_backends.torch.module import MouseNet
assert native._load()[0]._name.endswith("sparse_taps_asan.so")
for spec, batch in (("specs/variants/tiny.yaml", 3), ("specs/variants/tiny-feedback.yaml", 2)):
    ir = compile_ir(spec)
    model = MouseNet(ir).train()
    images = torch.randn(batch, 3, ir.input.height, ir.input.width, requires_grad=True)
    logits = SparseTrainer(model).forward(images)
    F.cross_entropy(logits, torch.arange(batch) % ir.readout.classes).backward()
    assert torch.isfinite(images.grad).all()
print("trained")
"""


def test_sparse_training_steps_are_memory_safe(asan_kernel):
    """Forward, input and weight gradients over the kept taps (feed-forward, and recurrent
    with upsampled feedback) stay inside their arrays."""
    result = subprocess.run([sys.executable, "-c", TRAINING_SCRIPT], capture_output=True,
                            text=True, cwd=ROOT, env=asan_kernel, timeout=600)
    assert "AddressSanitizer" not in result.stderr, result.stderr[-4000:]
    assert result.returncode == 0 and "trained" in result.stdout, result.stderr[-4000:]
