"""Representational similarity analysis with rsatoolbox.

RDM: 1 - Pearson correlation between the patterns two images evoke (``calc_rdm``, method
"correlation"). SSM: similarity of two RDMs, Spearman (``compare`` "spearman") or Pearson
("corr"). The data RDMs of a region are split-half trial RDMs; a model population's SSM is its
mean similarity to them, and the noise ceiling (``boot_noise_ceiling``) bounds what any model
can reach on the same RDMs: the lower bound compares one half with the other, the upper bound
each half with the mean of both. RDMs are exact (ties stay ties); SSM uncertainty is the
leave-one-image-out jackknife (``mnc.neuro.jackknife``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mnc.neuro.jackknife import (
    interval,
    jackknife_se,
    jackknife_ssm,
    pattern_correlation,
    rdm_vector,
)
from mnc.neuro.representation import FeatureSummary

SSM_METHODS: dict[str, str] = {"spearman": "spearman", "pearson": "corr"}
"""User-facing name -> rsatoolbox comparison method."""


def _rsatoolbox() -> tuple[object, object, object]:
    from mnc.neuro.sources.allen import quiet_allensdk

    with quiet_allensdk():
        import rsatoolbox.data
        import rsatoolbox.inference
        import rsatoolbox.rdm
    return rsatoolbox.data, rsatoolbox.rdm, rsatoolbox.inference


def rdms_from_vectors(vectors: Sequence[np.ndarray], names: Sequence[str]) -> object:
    """rsatoolbox RDMs holding the given upper-triangle dissimilarity vectors as they are."""
    _, rdm, _ = _rsatoolbox()
    return rdm.RDMs(np.stack([np.asarray(v, dtype=np.float64) for v in vectors]),  # type: ignore
                    dissimilarity_measure="correlation", rdm_descriptors={"name": list(names)})


def rdms_from_patterns(patterns: Sequence[np.ndarray], names: Sequence[str]) -> object:
    """RDMs (correlation distance), one per (images x channels) pattern matrix.

    Computed exactly (``jackknife.rdm_vector``: ties stay ties). A constant pattern (every
    channel equal) has no correlation; it counts as uncorrelated (distance 1) with every other
    image, as in ``FeatureSummary``, so RDMs stay comparable.
    """
    return rdms_from_vectors([rdm_vector(pattern_correlation(p)) for p in patterns], names)


def model_rdms(summaries: Mapping[str, FeatureSummary]) -> object:
    """One RDM per population, straight from its summary's pattern correlations."""
    names = list(summaries)
    return rdms_from_vectors([rdm_vector(summaries[n].pattern_correlation()) for n in names],
                             names)


def rdm_vectors(rdms: object) -> np.ndarray:
    """(n_rdms, pairs) upper-triangle dissimilarities."""
    return np.asarray(rdms.get_vectors())  # type: ignore[attr-defined]


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
class JackknifeResult:
    replicates: np.ndarray
    """(images, populations) SSM with each image left out in turn."""

    @property
    def std(self) -> np.ndarray:
        return jackknife_se(self.replicates)

    def interval(self, estimate: np.ndarray, level: float = 0.95
                 ) -> tuple[np.ndarray, np.ndarray]:
        """estimate -/+ t(images - 1) x jackknife standard error."""
        return interval(estimate, self.std, self.replicates.shape[0] - 1, level)


def jackknife_ssms(model: object, region_halves: Sequence[object], method: str = "spearman"
                   ) -> list[JackknifeResult]:
    """Leave-one-image-out SSM of every population, per region's split-half RDMs."""
    replicates = jackknife_ssm(rdm_vectors(model), [rdm_vectors(h) for h in region_halves],
                               method)
    return [JackknifeResult(r) for r in replicates]
