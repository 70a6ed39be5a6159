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
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mnc.analysis.limits import current_limits
from mnc.errors import MncError
from mnc.io.atomic import atomic_open, write_text_atomic
from mnc.io.textfile import TextFileError, parse_json, read_bounded_bytes, read_bounded_text
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


MAX_SCORE_BYTES = 64 * 2**20
"""A score file holds a few numbers per population and bootstrap draw."""


class CacheWarning(UserWarning):
    """A cache entry could not be read back; it is computed again and replaced."""


def cache_miss(path: Path, reason: str) -> None:
    """Warn that ``path`` is ignored: a damaged or oversized entry costs a recomputation."""
    warnings.warn(f"{path}: unusable cache entry ({reason}); computing it again",
                  CacheWarning, stacklevel=3)


def read_cached_arrays(path: Path, names: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """The arrays of a cached ``.npz`` or ``.npy`` file (key ``""`` for ``.npy``), read with
    the memory limit as bound and never unpickled; None with a warning if unusable."""
    try:
        raw = read_bounded_bytes(path, current_limits().max_memory_bytes, "cache file")
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"": loaded}
        with loaded:
            return {name: loaded[name] for name in names}
    except TextFileError as error:
        cache_miss(path, error.reason)
    except KeyError as error:
        cache_miss(path, f"no array {error}")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else \
            type(error).__name__
        if "pickle" in reason:  # numpy's advice to load it unsafely is not passed on
            reason = "holds pickled (object) data, which is never loaded"
        cache_miss(path, reason)
    return None


def read_cached_json(path: Path, limit: int | None = None) -> Any | None:
    """Parsed JSON of a cache file read with a bound (``MAX_SCORE_BYTES`` unless given);
    None with a warning if unusable."""
    try:
        text = read_bounded_text(path, limit or MAX_SCORE_BYTES, "cache file")
        return parse_json(text, str(path))
    except MncError as error:
        cache_miss(path, getattr(error, "reason", str(error)))
    return None


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
            stored = read_cached_arrays(path, ("gram", "row_sums", "n_units", "unit_sample"))
            if stored is None:
                return None
            problem = _summary_problem(stored)
            if problem is not None:
                cache_miss(path, problem)
                return None
            summaries[name] = FeatureSummary(
                gram=stored["gram"], row_sums=stored["row_sums"],
                n_units=int(stored["n_units"]), unit_sample=stored["unit_sample"])
        return summaries

    def save(self, summaries: dict[str, FeatureSummary]) -> None:
        for name, summary in summaries.items():
            with atomic_open(self.folder / _file_name(name), "wb") as stream:
                np.savez(stream, gram=summary.gram, row_sums=summary.row_sums,
                         n_units=np.int64(summary.n_units), unit_sample=summary.unit_sample)


def _summary_problem(stored: dict[str, np.ndarray]) -> str | None:
    """What is wrong with a cached summary's arrays, or None: they must agree in images."""
    gram, row_sums = stored["gram"], stored["row_sums"]
    n_units, sample = stored["n_units"], stored["unit_sample"]
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1]:
        return f"gram has shape {gram.shape}, expected (N, N)"
    if row_sums.shape != gram.shape[:1] or sample.ndim != 2 or sample.shape[0] != len(gram):
        return f"row_sums {row_sums.shape} and unit_sample {sample.shape} do not match " \
               f"gram {gram.shape}"
    if n_units.shape != () or n_units.dtype.kind not in "iu" or int(n_units) < sample.shape[1]:
        return f"n_units {n_units!r} is not a whole number of at least {sample.shape[1]}"
    if not all(array.dtype.kind == "f" for array in (gram, row_sums, sample)):
        return "gram, row_sums and unit_sample must hold floating-point numbers"
    return None


def tables_problem(value: Any) -> str | None:
    """What keeps ``value`` from being analysis tables (name -> list of rows), or None."""
    if not isinstance(value, dict) or not all(
            isinstance(name, str) and isinstance(rows, list)
            and all(isinstance(row, dict) for row in rows) for name, rows in value.items()):
        return "expected an object of tables, each a list of rows"
    return None


class ScoreCache:
    """JSON results of one analysis, keyed by everything that determines them."""

    def __init__(self, root: Path, key: str):
        self.path = Path(root) / "scores" / f"{key}.json"

    def load(self) -> Any | None:
        if not self.path.is_file():
            return None
        value = read_cached_json(self.path)
        if value is not None and (problem := tables_problem(value)) is not None:
            cache_miss(self.path, problem)
            return None
        return value

    def save(self, value: Any) -> None:
        write_text_atomic(self.path, json.dumps(value, indent=1))
