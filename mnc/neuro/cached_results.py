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
from mnc.neuro.recordings import NeuralData
from mnc.neuro.report import Tables
from mnc.neuro.representation import FeatureSummary

Progress = Callable[[int, int], None]


def population_summaries(loaded: LoadedModel, raw_images: np.ndarray, options: AnalysisOptions,
                         cache_root: Path | None, progress: Progress | None = None
                         ) -> tuple[dict[str, FeatureSummary], str, bool]:
    """Per-population summaries of the model's responses to the images, from cache if present.

    Returns (summaries in network order, feature key, whether the cache answered);
    ``cache_root=None`` computes without a cache.
    """
    model_input = loaded.model_input(raw_images, options.normalize)
    settings: dict[str, Any] = {"max_units": options.max_units, "seed": options.seed}
    if is_stepped(loaded.model):  # feed-forward keys stay as they were
        steps = chosen_steps(loaded.model, options.step)
        settings["steps"] = [steps.start, steps.stop - 1]
    key = feature_key(loaded.network_key, loaded.weights_key, model_input, settings)
    cache = FeatureCache(cache_root, key) if cache_root is not None else None
    index = cache.folder / "index.json" if cache is not None else None
    if cache is not None and index is not None and entry_exists(index):
        names = read_cached_json(index)
        if names is not None and (not isinstance(names, list) or
                                  not all(isinstance(name, str) for name in names)):
            cache_miss(index, "expected a list of population names")
            names = None
        cached = cache.load(names) if names is not None else None
        if cached is not None:
            return cached, key, True
    summaries = summarize_features(loaded.model, model_input, options.batch_size,
                                   max_units=options.max_units, seed=options.seed,
                                   scratch_dir=None, progress=progress, step=options.step)
    order = [p.name for p in loaded.populations if p.name in summaries]
    order += [name for name in summaries if name not in order]
    summaries = {name: summaries[name] for name in order}
    if cache is not None and index is not None:
        cache.save(summaries)
        write_cache_text(cache.root, index, json.dumps(order))
    return summaries, key, False


def cached_tables(cache_root: Path | None, kind: str, key: str, data: NeuralData,
                   selection: NeuralSelection, options: AnalysisOptions,
                   compute: Callable[[], Tables]) -> tuple[Tables, bool]:
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
