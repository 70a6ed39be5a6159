"""The neural comparison on any step of a recurrent network: ``step`` in the Python API and
``--step`` on ``mnc rsa`` / ``mnc physiology``, with clear errors for steps the model lacks."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")


from mnc.cli import rsa as rsa_command
from mnc.errors import UsageError
from mnc.ir import Dynamics
from mnc.neuro.api import AnalysisOptions, NeuralSelection, run_physiology, run_rsa
from mnc.neuro.model_features import LoadedModel, extract_features
from tests.neuro.conftest import FakeModel

pytestmark = pytest.mark.neuro

STEPS = 3


class FakeRecurrentModel(FakeModel):
    """Like ``FakeModel``, run in steps: ``features`` gives (N, T, C, H, W), each step its own
    random rectified projection of the image, as a recurrent network's per-step activity."""

    def __init__(self, dynamics: Dynamics, seed: int = 0):
        super().__init__(seed)
        self.ir = SimpleNamespace(**vars(self.ir), dynamics=dynamics, is_recurrent=True)
        self.ir.content_hash = "fake-recurrent-ir"
        self.per_step = [FakeModel(seed + 1 + step) for step in range(dynamics.steps)]
        self.shapes: list[tuple[int, ...]] = []

    def features(self, images: Any, populations: list[str] | None = None) -> dict[str, Any]:
        import torch

        self.shapes.append(tuple(images.shape))
        frames = (images[:, step] if images.dim() == 5 else images
                  for step in range(len(self.per_step)))
        steps = [model.features(frame, populations)
                 for model, frame in zip(self.per_step, frames, strict=True)]
        return {name: torch.stack([step[name] for step in steps], dim=1) for name in steps[0]}


def _images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, 16, 16)).astype(np.float32)


def _per_step(model: FakeRecurrentModel, images: np.ndarray) -> list[dict[str, np.ndarray]]:
    return [extract_features(step_model, images) for step_model in model.per_step]


def test_features_at_a_step_the_last_and_the_readout_steps() -> None:
    model = FakeRecurrentModel(Dynamics(steps=STEPS, readout_steps=(1, 2)))
    images = _images()
    truth = _per_step(model, images)
    for step in range(STEPS):
        got = extract_features(model, images, batch_size=4, step=step)
        np.testing.assert_allclose(got["VISp4"], truth[step]["VISp4"], rtol=1e-6)
    last = extract_features(model, images, step="last")
    np.testing.assert_allclose(last["VISal5"], truth[2]["VISal5"], rtol=1e-6)
    readout = extract_features(model, images)  # default: the readout's steps, averaged
    np.testing.assert_allclose(readout["VISal5"],
                               (truth[1]["VISal5"] + truth[2]["VISal5"]) / 2, rtol=1e-5)
    assert model.shapes[0] == (4, 3, 16, 16)


def test_a_clip_network_is_shown_each_image_at_every_step() -> None:
    model = FakeRecurrentModel(Dynamics(steps=STEPS, input="clip"))
    images = _images(2)
    got = extract_features(model, images, step=1)
    assert model.shapes == [(2, STEPS, 3, 16, 16)]
    np.testing.assert_allclose(got["VISp4"], _per_step(model, images)[1]["VISp4"], rtol=1e-6)


@pytest.mark.parametrize("step", [3, 7])
def test_a_step_outside_the_run_is_one_clear_error(step: int, tmp_path) -> None:
    loaded = LoadedModel(FakeRecurrentModel(Dynamics(steps=STEPS)), "untrained-seed0")
    # The step is checked before the recordings are read: this path does not exist.
    with pytest.raises(UsageError, match=rf"--step {step}: the model runs 3 steps \(0 to 2\)"):
        run_rsa(loaded, tmp_path / "missing.npz", options=AnalysisOptions(step=step))
    with pytest.raises(UsageError, match=r"runs 1 step \(0\)"):
        run_physiology(LoadedModel(FakeModel(), "untrained-seed0"), tmp_path / "missing.npz",
                       options=AnalysisOptions(step=1))


def test_each_step_is_scored_and_cached_on_its_own(boc_cache, tmp_path) -> None:
    loaded = LoadedModel(FakeRecurrentModel(Dynamics(steps=STEPS)), "untrained-seed0")
    options = {"n_boot": 0, "n_splits": 2, "regressions": (), "methods": ("spearman",)}
    reports = {step: run_rsa(loaded, boc_cache, None, tmp_path / "cache",
                             NeuralSelection(areas=("VISp",)),
                             AnalysisOptions(**options, step=step))
               for step in (0, 2, "last")}
    assert len({reports[0].feature_key, reports[2].feature_key}) == 2
    assert reports["last"].feature_key == reports[2].feature_key
    assert reports["last"].features_cached and not reports[2].features_cached
    ssm = {step: report.tables["rsa"]["ssm"].to_numpy() for step, report in reports.items()}
    assert not np.allclose(ssm[0], ssm[2])
    np.testing.assert_allclose(ssm["last"], ssm[2])


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mnc rsa")
    rsa_command.add_arguments(parser)
    args = parser.parse_args(argv)
    args.command, args.verbose = "rsa", False
    return args


def test_step_option_of_the_command(boc_cache, tmp_path, monkeypatch, capsys) -> None:
    loaded = LoadedModel(FakeRecurrentModel(Dynamics(steps=STEPS)), "untrained-seed0")
    monkeypatch.setattr("mnc.neuro.model_features.load_model",
                        lambda spec, weights, seed: loaded)
    common = ["specs/mouse.yaml", "--weights", "untrained", "--boc-cache", str(boc_cache),
              "-o", str(tmp_path / "o"), "--bootstrap", "0", "--splits", "2",
              "--regressions", "none", "--methods", "spearman", "--areas", "VISp", "--json"]
    assert _parse(common).step == "readout"
    assert rsa_command.run(_parse([*common, "--step", "1"])) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["steps_compared"] == [1, 1] and summary["step"] == 1
    with pytest.raises(UsageError, match="--step 3: the model runs 3 steps"):
        rsa_command.run(_parse([*common, "--step", "3"]))
    capsys.readouterr()
    for bad, expected in (("-1", "expected a step number from 0, not -1"),
                          ("first", "expected a step number, 'last' or 'readout'")):
        with pytest.raises(SystemExit) as exit_info:
            _parse([*common, "--step", bad])
        assert exit_info.value.code == 2 and expected in capsys.readouterr().err


@pytest.mark.torch
def test_the_shipped_tiny_feedback_network_at_each_step() -> None:
    import torch

    from mnc.neuro.model_features import load_model, prepare_images
    from tests.neuro.small_models import small_recordings

    loaded = load_model("tiny-feedback", "untrained")
    data = small_recordings(n_images=4)
    images = prepare_images(data.images, 32, 32)
    populations = ["VISp2/3", "VISl5"]
    with torch.inference_mode():
        direct = {name: value.numpy().reshape(4, 3, -1) for name, value in
                  loaded.model.features(torch.from_numpy(images), populations).items()}
    first = extract_features(loaded.model, images, 4, populations, step=0)
    readout = extract_features(loaded.model, images, 4, populations)
    np.testing.assert_allclose(first["VISp2/3"], direct["VISp2/3"][:, 0], rtol=1e-6)
    # Feedback onto VISp2/3 arrives from step 1 on: step 0 differs from the later steps.
    assert not np.allclose(direct["VISp2/3"][:, 0], direct["VISp2/3"][:, 2])
    # The shipped readout averages steps 1 and 2.
    np.testing.assert_allclose(readout["VISl5"], direct["VISl5"][:, 1:].mean(axis=1),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(UsageError, match=r"--step 3: the model runs 3 steps \(0 to 2\)"):
        run_rsa(loaded, data, options=AnalysisOptions(step=3))
