"""Shared pieces of the training tests: a small digits recipe and one reference run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TINY_SPEC

torch = pytest.importorskip("torch")

# A few steps of the tiny spec on digits: enough to exercise every part of the loop in seconds.
SMALL_RUN: dict[str, Any] = {
    "data": "digits", "epochs": 2, "batch_size": 16, "max_steps_per_epoch": 3, "lr": 0.05,
    "schedule": "constant", "val_fraction": 0.05, "device": "cpu", "workers": 0, "seed": 3,
    "deterministic": True, "progress": False,
}
SMALL_RUN_FLAGS = [
    "--data", "digits", "--epochs", "2", "--batch-size", "16", "--max-steps-per-epoch", "3",
    "--lr", "0.05", "--schedule", "constant", "--val-fraction", "0.05", "--device", "cpu",
    "--workers", "0", "--seed", "3", "--deterministic", "--no-progress",
]
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """CI machines have two shared cores; one thread avoids oversubscription stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_small(output: Path, **changes: Any) -> dict[str, Any]:
    from mnc_backends.torch.training import train

    return train(TINY_SPEC, output, overrides={**SMALL_RUN, **changes})


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The small run trained once without interruption; others compare against it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = tmp_path_factory.mktemp("reference") / "run"
        summary = train_small(folder)
    finally:
        torch.set_num_threads(before)
    return summary


def subprocess_env() -> dict[str, str]:
    return {**os.environ, **ONE_THREAD_ENV}
