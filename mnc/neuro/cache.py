"""On-disk cache of population summaries and scores, keyed by network, weights and inputs.

Layout under the cache folder::

    features/<feature key>/<population>.npz   FeatureSummary of one population
    scores/<score key>.json                    analysis results (RSA, predictivity, physiology)
    responses/<session>-<file key>.npz         per-session trial responses (see allen.py)

The feature key hashes the IR content hash, the weights key (file sha256 or untrained + seed),
the exact model input (resized images) and the extraction settings, so a change to any of them
misses the cache instead of returning stale numbers.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from mnc.io.atomic import atomic_open, write_text_atomic
from mnc.ir.keys import population_key
from mnc.neuro.representation import FeatureSummary

CACHE_FORMAT = 2
"""2: scores add bootstrap draws and the best population leaves out the input image."""


def stable_key(*parts: Any) -> str:
    """First 20 hex digits of the sha256 of the JSON of ``parts``."""
    text = json.dumps([CACHE_FORMAT, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def feature_key(ir_hash: str, weights_key: str, model_input: np.ndarray,
                settings: dict[str, Any]) -> str:
    images_hash = hashlib.sha256(np.ascontiguousarray(model_input).tobytes()).hexdigest()
    return stable_key("features", ir_hash, weights_key, images_hash,
                      list(model_input.shape), settings)


def _file_name(population: str) -> str:
    return population_key(population) + ".npz"


class FeatureCache:
    """Per-population ``FeatureSummary`` files of one feature key."""

    def __init__(self, root: Path, key: str):
        self.folder = Path(root) / "features" / key

    def load(self, populations: list[str]) -> dict[str, FeatureSummary] | None:
        """All requested summaries, or None if any is missing."""
        summaries = {}
        for name in populations:
            path = self.folder / _file_name(name)
            if not path.is_file():
                return None
            with np.load(path) as stored:
                summaries[name] = FeatureSummary(
                    gram=stored["gram"], row_sums=stored["row_sums"],
                    n_units=int(stored["n_units"]), unit_sample=stored["unit_sample"])
        return summaries

    def save(self, summaries: dict[str, FeatureSummary]) -> None:
        for name, summary in summaries.items():
            with atomic_open(self.folder / _file_name(name), "wb") as stream:
                np.savez(stream, gram=summary.gram, row_sums=summary.row_sums,
                         n_units=np.int64(summary.n_units), unit_sample=summary.unit_sample)


class ScoreCache:
    """JSON results of one analysis, keyed by everything that determines them."""

    def __init__(self, root: Path, key: str):
        self.path = Path(root) / "scores" / f"{key}.json"

    def load(self) -> Any | None:
        if not self.path.is_file():
            return None
        return json.loads(self.path.read_text(encoding="utf-8"))

    def save(self, value: Any) -> None:
        write_text_atomic(self.path, json.dumps(value, indent=1))
