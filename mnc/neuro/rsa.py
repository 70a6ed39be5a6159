"""Representational similarity analysis with rsatoolbox.

RDM: 1 - Pearson correlation between the patterns two images evoke (``calc_rdm``, method
"correlation"). SSM: similarity of two RDMs, Spearman (``compare`` "spearman") or Pearson
("corr"). The data RDMs of a region are split-half trial RDMs; a model population's SSM is its
mean similarity to them, and the noise ceiling (``boot_noise_ceiling``) bounds what any model
can reach on the same RDMs: the lower bound compares one half with the other, the upper bound
each half with the mean of both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mnc.neuro.representation import FeatureSummary

SSM_METHODS: dict[str, str] = {"spearman": "spearman", "pearson": "corr"}
"""User-facing name -> rsatoolbox comparison method."""


def _rsatoolbox() -> tuple[object, object, object]:
    from mnc.neuro.allen import quiet_allensdk

    with quiet_allensdk():
        import rsatoolbox.data
        import rsatoolbox.inference
        import rsatoolbox.rdm
    return rsatoolbox.data, rsatoolbox.rdm, rsatoolbox.inference


def rdms_from_patterns(patterns: Sequence[np.ndarray], names: Sequence[str]) -> object:
    """rsatoolbox RDMs (correlation distance), one per (images x channels) pattern matrix."""
    data, rdm, _ = _rsatoolbox()
    with np.errstate(invalid="ignore", divide="ignore"):
        computed = [rdm.calc_rdm(data.Dataset(np.asarray(p, dtype=np.float64)),  # type: ignore
                                 method="correlation") for p in patterns]
    combined = rdm.concat(computed)  # type: ignore[attr-defined]
    # A constant pattern (every channel equal) has no correlation; treat it as uncorrelated
    # (distance 1) as FeatureSummary does, so RDMs stay comparable (rsatoolbox needs equal
    # NaN positions in RDMs it compares).
    combined.dissimilarities = np.nan_to_num(combined.dissimilarities, nan=1.0)
    combined.rdm_descriptors["name"] = list(names)
    return combined


def model_rdms(summaries: Mapping[str, FeatureSummary]) -> object:
    """One RDM per population, from the exact small patterns of its summary."""
    names = list(summaries)
    return rdms_from_patterns([summaries[n].correlation_patterns() for n in names], names)


def rdm_matrices(rdms: object) -> np.ndarray:
    """(n_rdms, images, images) square matrices."""
    return np.asarray(rdms.get_matrices())  # type: ignore[attr-defined]


def compare_rdms(first: object, second: object, method: str = "spearman") -> np.ndarray:
    """(len(first), len(second)) similarities; method "spearman" or "pearson"."""
    _, rdm, _ = _rsatoolbox()
    return np.asarray(rdm.compare(first, second, method=SSM_METHODS[method]))  # type: ignore


def split_half_rdms(halves: Sequence[tuple[np.ndarray, np.ndarray]]) -> object:
    """RDMs of every half of every split, in order (a0, b0, a1, b1, ...)."""
    patterns = [half for pair in halves for half in pair]
    names = [f"split{i // 2}{'ab'[i % 2]}" for i in range(len(patterns))]
    return rdms_from_patterns(patterns, names)


def noise_ceiling(half_rdms: object, method: str = "spearman") -> tuple[float, float]:
    """(lower, upper) noise ceiling averaged over the splits (rsatoolbox boot_noise_ceiling)."""
    _, _, inference = _rsatoolbox()
    count = len(half_rdms)  # type: ignore[arg-type]
    lowers, uppers = [], []
    for first in range(0, count, 2):
        pair = half_rdms[[first, first + 1]]  # type: ignore[index]
        lower, upper = inference.boot_noise_ceiling(  # type: ignore[attr-defined]
            pair, method=SSM_METHODS[method])
        lowers.append(lower)
        uppers.append(upper)
    return float(np.mean(lowers)), float(np.mean(uppers))


def ssm(model: object, half_rdms: object, method: str = "spearman") -> np.ndarray:
    """(populations,) mean similarity of each model RDM to the split-half data RDMs."""
    return compare_rdms(model, half_rdms, method).mean(axis=1)


@dataclass(frozen=True)
class BootstrapResult:
    samples: np.ndarray
    """(n_boot, populations) SSM on resampled images."""

    @property
    def std(self) -> np.ndarray:
        return np.nanstd(self.samples, axis=0)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        tail = (1.0 - level) / 2.0 * 100.0
        return (np.nanpercentile(self.samples, tail, axis=0),
                np.nanpercentile(self.samples, 100.0 - tail, axis=0))


def bootstrap_ssm(model: object, half_rdms: object, method: str = "spearman",
                  n_boot: int = 100, seed: int = 0) -> BootstrapResult:
    """SSM over images resampled with replacement (rsatoolbox ``bootstrap_sample_pattern``).

    Pairs of a resampled image with itself are left out of the comparison by rsatoolbox.
    """
    _, _, inference = _rsatoolbox()
    n_models = len(model)  # type: ignore[arg-type]
    if n_boot <= 0:
        return BootstrapResult(samples=np.empty((0, n_models)))
    state = np.random.get_state()
    np.random.seed(seed)  # rsatoolbox draws from numpy's global generator
    try:
        samples = np.empty((n_boot, n_models))
        for index in range(n_boot):
            data_sample, patterns = inference.bootstrap_sample_pattern(  # type: ignore
                half_rdms, pattern_descriptor="index")
            model_sample = model.subsample_pattern("index", patterns)  # type: ignore
            samples[index] = ssm(model_sample, data_sample, method)
    finally:
        np.random.set_state(state)
    return BootstrapResult(samples=samples)
