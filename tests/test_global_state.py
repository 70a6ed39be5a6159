"""Library calls leave the caller's process-wide state alone (as a notebook needs).

Compiling, loading, exporting and running ONNX, training and loading a model for the neural
comparison must not reseed or draw from the global generators of Python, numpy or torch,
configure the root logger, flip torch's determinism switches or change onnxruntime's
process-wide logger. Only the command line may set such things.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mnc
from mnc.backend import BackendOptions, get_backend
from tests.conftest import TINY_SPEC

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch


def _snapshot() -> dict[str, Any]:
    numpy_state = np.random.get_state()
    root = logging.getLogger()
    return {
        "python": random.getstate(),
        "numpy": (numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]),
        "torch": torch.get_rng_state().tolist(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "cudnn": (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark),
        "threads": torch.get_num_threads(),
        "root_level": root.level,
        "root_handlers": list(root.handlers),
        "logging_disabled": logging.root.manager.disable,
    }


@pytest.fixture
def unchanged(monkeypatch) -> Callable[[Callable[[], object]], object]:
    """Run a call between two snapshots of the global state and require them to be equal."""
    import onnxruntime

    def forbidden(*args: object) -> None:
        raise AssertionError("library code changed onnxruntime's default logger severity")

    monkeypatch.setattr(onnxruntime, "set_default_logger_severity", forbidden)

    def check(call: Callable[[], object]) -> object:
        random.seed(1234)
        np.random.seed(1234)
        torch.manual_seed(1234)
        before = _snapshot()
        result = call()
        after = _snapshot()
        changed = [key for key in before if before[key] != after[key]]
        assert not changed, f"global state changed: {changed}"
        return result

    return check


def test_compiling_running_and_loading_a_torch_model(unchanged, tmp_path: Path):
    model = unchanged(lambda: mnc.compile(str(TINY_SPEC), backend="torch"))
    images = torch.zeros(2, 3, 32, 32)

    def run_both_modes() -> None:
        model.train()(images)
        with torch.inference_mode():
            model.eval()(images)

    unchanged(run_both_modes)
    saved = tmp_path / "tiny.pt"
    unchanged(lambda: get_backend("torch").save(model, saved, BackendOptions()))
    loaded = unchanged(lambda: mnc.load(str(saved)))
    assert loaded.content_hash == model.content_hash


def test_exporting_and_running_onnx(unchanged, tmp_path: Path):
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from mnc_backends.onnx.runtime import open_model, predict

    path = tmp_path / "tiny.onnx"
    exported = unchanged(lambda: mnc.compile(str(TINY_SPEC), backend="onnx"))
    get_backend("onnx").save(exported, path, BackendOptions())
    image = tmp_path / "grey.png"
    Image.new("RGB", (40, 40), (120, 120, 120)).save(image)
    deployed = unchanged(lambda: open_model(path))
    outcome = unchanged(lambda: predict(deployed, [image], progress=False))
    assert outcome.logits.shape == (1, 10)


def test_training_restores_the_generators_it_seeds(unchanged, tmp_path: Path):
    from mnc_backends.torch.training import train

    overrides = {"data": "digits", "epochs": 1, "batch_size": 16, "max_steps_per_epoch": 2,
                 "val_fraction": 0.05, "device": "cpu", "workers": 0, "seed": 3,
                 "deterministic": True, "progress": False}
    summary = unchanged(lambda: train(TINY_SPEC, tmp_path / "run", overrides=overrides))
    assert summary["steps"] == 2
    resumed = unchanged(lambda: train(None, None, resume=tmp_path / "run",
                                      overrides={"epochs": 2}))
    assert resumed["steps"] == 4


def test_untrained_model_for_the_neural_comparison(unchanged):
    from mnc.neuro.model_features import load_model

    loaded = unchanged(lambda: load_model(TINY_SPEC, "untrained", seed=5))
    assert loaded.weights_key == "untrained-seed5"


def test_untrained_module_of_any_model_is_seeded_without_touching_the_caller(unchanged):
    from mnc.neuro.any_model import load_any_model

    spec = "module:tests.neuro.small_models:build"

    def weights(seed: int) -> list[Any]:
        loaded = unchanged(lambda: load_any_model(spec, ["1"], "untrained", seed=seed))
        return [tensor.clone() for tensor in loaded.model.module.state_dict().values()]

    first, again, other = weights(3), weights(3), weights(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
