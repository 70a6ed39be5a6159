"""Fixtures of the neural-comparison tests: synthetic Brain Observatory caches, a fake model.

Nothing here needs allensdk: the caches are read with h5py.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from mnc.neuro.sources.synthetic import write_one_session_cache, write_synthetic_cache


@pytest.fixture(scope="session")
def boc_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five sessions (VISp Cux2/Rorb, VISl Cux2, VISal Rbp4, VISam Cux2), 10 noisy trials."""
    path = tmp_path_factory.mktemp("boc")
    write_synthetic_cache(path, trials=10, noise_sd=0.3)
    return path


@pytest.fixture(scope="session")
def one_session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small noiseless session (4 images of 6 x 7, 3 trials): a file to damage."""
    folder = tmp_path_factory.mktemp("one_session_boc")
    write_one_session_cache(folder)
    return folder


@pytest.fixture
def session_cache(one_session_cache: Path, tmp_path: Path) -> Path:
    """A copy of ``one_session_cache`` for a test to change."""
    copy = tmp_path / "boc"
    shutil.copytree(one_session_cache, copy)
    return copy


def session_path(cache: Path) -> Path:
    """The (first) session file of a synthetic cache."""
    return next((cache / "ophys_experiment_data").glob("*.nwb"))


@pytest.fixture(scope="session")
def noiseless_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("boc_noiseless")
    write_synthetic_cache(path, trials=6, noise_sd=0.0)
    return path


@dataclass(frozen=True)
class FakePopulation:
    name: str
    area: str
    layer: str | None
    channels: int
    height: int
    width: int


class FakeModel:
    """Stands in for a compiled network: fixed random rectified projections of the image.

    Populations get more units deeper in the list; ``features`` takes and returns torch
    tensors like mnc's torch module.
    """

    def __init__(self, seed: int = 0, size: int = 16):
        self.populations = [
            FakePopulation("LGNd", "LGNd", None, 2, size, size),
            FakePopulation("VISp4", "VISp", "4", 3, size, size),
            FakePopulation("VISp2/3", "VISp", "2/3", 4, size, size),
            FakePopulation("VISl2/3", "VISl", "2/3", 4, size // 2, size // 2),
            FakePopulation("VISal5", "VISal", "5", 5, size // 2, size // 2),
        ]
        self.ir = SimpleNamespace(
            populations=self.populations, content_hash=f"fake-ir-{size}",
            input=SimpleNamespace(channels=3, height=size, width=size))
        rng = np.random.default_rng(seed)
        pixels = 3 * size * size
        # Divide before casting: under numpy 2 a float64 scalar would promote float32 back.
        self.weights = {p.name: (rng.standard_normal((pixels, p.channels * p.height * p.width))
                                 / np.sqrt(pixels)).astype(np.float32)
                        for p in self.populations}
        self.calls = 0

    def features(self, images: Any, populations: list[str] | None = None) -> dict[str, Any]:
        import torch

        self.calls += 1
        flat = images.reshape(images.shape[0], -1)
        out = {}
        for p in self.populations:
            if populations is not None and p.name not in populations:
                continue
            value = torch.relu(flat @ torch.from_numpy(self.weights[p.name]))
            out[p.name] = value.reshape(images.shape[0], p.channels, p.height, p.width)
        return out


@pytest.fixture
def fake_loaded() -> Any:
    from mnc.neuro.model_features import LoadedModel

    return LoadedModel(model=FakeModel(), weights_key="untrained-seed0")
