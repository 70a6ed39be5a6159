"""On-disk cache of population summaries and scores, keyed by network, weights and inputs.

Layout under the cache folder::

    features/<feature key>/<population>.npz   FeatureSummary of one population
    scores/<score key>.json                    analysis results (RSA, predictivity, physiology)
    responses/<session>-<file key>.npz         per-session trial responses (``mnc.neuro.sources``)

Anyone who can write to the folder is not trusted: entries are opened without following
links or blocking on FIFOs, and only regular files owned by the current user count (another
user's entry is a miss); entries are written by replacing the name, never through a link, into
subfolders that must be real folders of the current user. Values are checked (finite Gram
matrices that are Gram matrices, score tables of plain finite-or-NaN values in range).

The feature key hashes the IR content hash, the weights key (file sha256 or untrained + seed),
the exact model input (resized images) and the extraction settings, so a change to any of them
misses the cache instead of returning stale numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import MncError
from mnc.io import strict_json
from mnc.io.cache_entries import cache_open, entry_exists, read_entry, write_cache_text
from mnc.io.strict_json import non_finite_marks, restore_non_finite
from mnc.io.textfile import TextFileError, parse_json
from mnc.ir.keys import population_key
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.sources.cache_files import (  # noqa: F401 - importable from here as before
    CacheWarning,
    cache_miss,
    read_cached_arrays,
)

CACHE_FORMAT = 2
"""2: scores add bootstrap draws and the best population leaves out the input image."""


SCORES_FORMAT = "mnc-scores-strict-1"
"""Score entries in strict JSON with their non-finite numbers listed apart."""


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


def read_cached_json(path: Path, limit: int | None = None) -> Any | None:
    """Parsed JSON of a cache file read with a bound (``MAX_SCORE_BYTES`` unless given);
    None with a warning if unusable."""
    try:
        raw = read_entry(path, limit or MAX_SCORE_BYTES)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise TextFileError(str(path), "not UTF-8 text") from None
        if "\x00" in text:
            raise TextFileError(str(path), "contains NUL bytes")
        return parse_json(text, str(path))
    except MncError as error:
        cache_miss(path, getattr(error, "reason", str(error)))
    return None


def _file_name(population: str) -> str:
    return population_key(population) + ".npz"


class FeatureCache:
    """Per-population ``FeatureSummary`` files of one feature key."""

    def __init__(self, root: Path, key: str):
        self.root = Path(root)
        self.folder = self.root / "features" / key

    def load(self, populations: list[str]) -> dict[str, FeatureSummary] | None:
        """All requested summaries, or None if any is missing."""
        summaries = {}
        for name in populations:
            path = self.folder / _file_name(name)
            if not entry_exists(path):
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
            with cache_open(self.root, self.folder / _file_name(name)) as stream:
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
    if not all(np.isfinite(array).all() for array in (gram, row_sums, sample)):
        return "gram, row_sums or unit_sample hold NaN or infinite values"
    return _gram_problem(gram)


def _gram_problem(gram: np.ndarray) -> str | None:
    """A Gram matrix (pattern . pattern) is symmetric with a non-negative diagonal and keeps
    Cauchy-Schwarz; anything else did not come from features."""
    diagonal = np.diag(gram)
    scale = max(float(np.abs(gram).max(initial=0.0)), 1e-300)
    tolerance = 1e-6 * scale
    if np.any(diagonal < -tolerance) or not np.allclose(gram, gram.T, rtol=1e-6,
                                                         atol=tolerance):
        return "gram is not a Gram matrix (asymmetric or negative diagonal)"
    bound = np.sqrt(np.outer(np.maximum(diagonal, 0), np.maximum(diagonal, 0)))
    if np.any(np.abs(gram) > bound * (1 + 1e-6) + tolerance):
        return "gram is not a Gram matrix (an entry exceeds its diagonal's bound)"
    return None


_CORRELATION_COLUMNS = ("ssm", "ssm_ci_low", "ssm_ci_high", "nc_lower", "nc_upper",
                        "ir_population_ssm", "median_r")
"""Columns holding correlations: within [-1, 1] (or NaN where undefined)."""
_COUNT_COLUMNS = ("n_cells", "n_reliable_cells", "n_images", "n_trials")


def tables_problem(value: Any) -> str | None:
    """What keeps ``value`` from being analysis tables (name -> list of rows of plain
    values), or None. Numbers must be finite or NaN, correlations within [-1, 1], counts
    whole and non-negative."""
    if not isinstance(value, dict) or not all(
            isinstance(name, str) and isinstance(rows, list)
            and all(isinstance(row, dict) for row in rows) for name, rows in value.items()):
        return "expected an object of tables, each a list of rows"
    for name, rows in value.items():
        for number, row in enumerate(rows):
            for column, cell in row.items():
                problem = _cell_problem(column, cell)
                if problem is not None:
                    return f"{name}[{number}].{column}: {problem}"
    return None


def _cell_problem(column: str, cell: Any) -> str | None:
    if isinstance(cell, list):
        if not all(_plain_number(item) for item in cell):
            return "expected a list of numbers"
        return None
    if cell is None or isinstance(cell, (str, bool)):
        return None
    if not _plain_number(cell):
        return f"expected a number, text or true/false, got {type(cell).__name__}"
    if math.isinf(cell):
        return "infinite"
    if column in _CORRELATION_COLUMNS and not math.isnan(cell) and not -1 <= cell <= 1:
        return f"{cell} is not a correlation (expected -1 to 1)"
    if column in _COUNT_COLUMNS and (not isinstance(cell, int) or cell < 0):
        return f"{cell} is not a count"
    return None


def _plain_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class ScoreCache:
    """JSON results of one analysis, keyed by everything that determines them."""

    def __init__(self, root: Path, key: str):
        self.root = Path(root)
        self.path = self.root / "scores" / f"{key}.json"

    def load(self) -> Any | None:
        if not entry_exists(self.path):
            return None
        stored = read_cached_json(self.path)
        value = stored
        if isinstance(stored, dict) and stored.get("format") == SCORES_FORMAT:
            value = stored.get("tables")
            problem = restore_non_finite(value, stored.get("non_finite"))
            if problem is not None:
                cache_miss(self.path, problem)
                return None
        # else an entry written before scores were strict JSON: NaN as written
        if value is not None and (problem := tables_problem(value)) is not None:
            cache_miss(self.path, problem)
            return None
        return value

    def save(self, value: Any) -> None:
        """Strict JSON (non-finite numbers as null, listed by path so that ``load`` gives back
        exactly what was saved)."""
        entry = {"format": SCORES_FORMAT, "tables": value, "non_finite": non_finite_marks(value)}
        write_cache_text(self.root, self.path, strict_json.dumps(entry, indent=1))
