"""Model summaries and score tables, from the cache when an earlier run left them.

Summaries are keyed by the network, the weights, the model input and the sampling settings;
scores by the summaries' key, the neural data and every option.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnc.neuro.cache import (
    FeatureCache,
    ScoreCache,
    cache_miss,
    entry_exists,
    feature_key,
    read_cached_json,
    stable_key,
    write_cache_text,
)
from mnc.neuro.model_features import LoadedModel, chosen_steps, is_stepped, summarize_features
from mnc.neuro.options import AnalysisOptions, NeuralSelection
from mnc.neuro.report import Tables
from mnc.neuro.representation import FeatureSummary
from mnc.neuro.sources.recordings import NeuralData

Progress = Callable[[int, int], None]


def output_and_cache_folders(output_dir: str | Path | None, cache_dir: str | Path | None
                             ) -> tuple[Path | None, Path | None]:
    """The output folder and the cache's (default ``OUTPUT/cache``; None without either)."""
    out = Path(output_dir).expanduser() if output_dir is not None else None
    cache_root = (Path(cache_dir).expanduser() if cache_dir
                  else out / "cache" if out is not None else None)
    return out, cache_root


def population_summaries(loaded: LoadedModel, raw_images: np.ndarray, options: AnalysisOptions,
                         cache_root: Path | None, progress: Progress | None = None
                         ) -> tuple[dict[str, FeatureSummary], str, bool]:
    """Per-population summaries of the model's responses to the images, from cache if present.

    Returns (summaries in network order, feature key, whether the cache answered);
    ``cache_root=None`` computes without a cache.
    """
    model_input = loaded.model_input(raw_images, options.normalize)
    key = feature_key(loaded.network_key, loaded.weights_key, model_input,
                      _summary_settings(loaded, options))
    cache = FeatureCache(cache_root, key) if cache_root is not None else None
    cached = _cached_summaries(cache) if cache is not None else None
    if cached is not None:
        return cached, key, True
    summaries = summarize_features(loaded.model, model_input, options.batch_size,
                                   max_units=options.max_units, seed=options.seed,
                                   scratch_dir=None, progress=progress, step=options.step)
    order = [p.name for p in loaded.populations if p.name in summaries]
    order += [name for name in summaries if name not in order]
    summaries = {name: summaries[name] for name in order}
    if cache is not None:
        cache.save(summaries)
        write_cache_text(cache.root, cache.folder / SUMMARY_INDEX, json.dumps(order))
    return summaries, key, False


SUMMARY_INDEX = "index.json"
"""The populations of a cached entry, in network order."""


def _summary_settings(loaded: LoadedModel, options: AnalysisOptions) -> dict[str, Any]:
    """What the summaries depend on besides network, weights and input (their cache key)."""
    settings: dict[str, Any] = {"max_units": options.max_units, "seed": options.seed}
    if is_stepped(loaded.model):  # feed-forward keys stay as they were
        steps = chosen_steps(loaded.model, options.step)
        settings["steps"] = [steps.start, steps.stop - 1]
    return settings


def _cached_summaries(cache: FeatureCache) -> dict[str, FeatureSummary] | None:
    """The entry's summaries, or None when it is missing or its index is not a list of
    population names (reported as a cache miss)."""
    index = cache.folder / SUMMARY_INDEX
    if not entry_exists(index):
        return None
    names = read_cached_json(index)
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        cache_miss(index, "expected a list of population names")
        return None
    return cache.load(names)


def cached_tables(cache_root: Path | None, kind: str, key: str, data: NeuralData,
                  selection: NeuralSelection, options: AnalysisOptions,
                  compute: Callable[[], Tables]) -> tuple[Tables, bool]:
    """The score tables of ``kind`` from the score cache, else ``compute()``d and stored;
    and whether the cache answered."""
    if cache_root is None:
        return compute(), False
    score_key = stable_key(kind, key, data.fingerprint, dataclasses.asdict(selection),
                           dataclasses.asdict(options))
    store = ScoreCache(cache_root, score_key)
    stored = store.load()
    if stored is not None:
        return stored, True
    tables = compute()
    store.save(tables)
    return tables, False
