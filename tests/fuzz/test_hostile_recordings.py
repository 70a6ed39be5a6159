"""Seeded, time-bounded fuzzing of the files the neural comparison reads: mutated Brain
Observatory session files (NWB/HDF5), .npz and NetCDF recordings each load or are refused with
one MncError. Each kind runs for a few seconds in a subprocess under a memory cap and the
run's memory limit, so a crash, a hang or a runaway allocation fails here."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.neuro

WORKER = Path(__file__).with_name("recordings_fuzz_worker.py")
ADDRESS_SPACE = 3 * 2**30
"""The worker's cap: numpy, h5py and xarray start in well under this."""
SECONDS = 3.0


def _cap() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


@pytest.mark.parametrize("kind", ["session", "npz", "netcdf"])
def test_mutated_files_load_or_are_refused_clearly(kind: str, tmp_path: Path) -> None:
    pytest.importorskip("h5py" if kind == "session" else "numpy")
    if kind == "netcdf":
        pytest.importorskip("xarray")
        pytest.importorskip("scipy")
    env = {
        **os.environ,
        "MNC_MAX_MEMORY_MB": "256",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, str(WORKER), kind, "20261207", str(SECONDS), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        preexec_fn=_cap,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    counts = dict(part.split("=") for part in result.stdout.split()[-3:])
    assert int(counts["cases"]) >= 20, result.stdout
    assert int(counts["refused"]) > 0
