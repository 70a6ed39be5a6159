"""Fixtures for the torch backend tests: the default IR, a tiny IR, and IR edits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import mnc  # noqa: E402
from mnc.ir.model import IR  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SPEC = ROOT / "specs" / "mouse.yaml"
TINY_SPEC = ROOT / "specs" / "variants" / "tiny.yaml"

# Used while specs/variants/tiny.yaml does not exist: the default graph at 32x32 with about
# 1/16 of the neurons (every population keeps at least one channel), 10 classes.
TINY_FALLBACK = """\
extends: {base}
name: tiny-test
input: {{height_px: 32, width_px: 32}}
neurons:
  counts:
    LGNd: 1325
    VISp: {{"4": 6789, "2/3": 10828, "5": 8408}}
    VISl: {{"4": 969, "2/3": 1394, "5": 1302}}
    VISrl: {{"4": 898, "2/3": 1412, "5": 1198}}
    VISli: {{"4": 360, "2/3": 599, "5": 726}}
    VISpl: {{"4": 300, "2/3": 1120, "5": 1253}}
    VISal: {{"4": 607, "2/3": 985, "5": 996}}
    VISpor: {{"4": 372, "2/3": 1911, "5": 1889}}
readout: {{classes: 10}}
"""


def edit_ir(ir: IR, *, mode: str | None = None, seed: int | None = None,
            classes: int | None = None) -> IR:
    """A copy of the IR with another mask mode, seed or number of classes (fresh hash)."""
    data: dict[str, Any] = ir.model_dump()
    if mode is not None:
        data["mask"]["mode"] = mode
    if seed is not None:
        data["mask"]["seed"] = seed
    if classes is not None:
        data["readout"]["classes"] = classes
    return IR.model_validate(data)


@pytest.fixture(scope="session")
def default_ir() -> IR:
    return mnc.compile_ir(DEFAULT_SPEC)


@pytest.fixture(scope="session")
def tiny_ir(tmp_path_factory: pytest.TempPathFactory) -> IR:
    if TINY_SPEC.is_file():
        return mnc.compile_ir(TINY_SPEC)
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY_FALLBACK.format(base=DEFAULT_SPEC.as_posix()))
    return mnc.compile_ir(path)


@pytest.fixture
def ir_editor() -> Callable[..., IR]:
    return edit_ir


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: CI machines are small and shared; oversubscription is 10x slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
