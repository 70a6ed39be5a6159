"""Recorded cells grouped into brain regions (area x Cre line x layer) and split-half trials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnc.neuro.allen import Recording
from mnc.neuro.layers import cre_short_name, population_for


@dataclass(frozen=True)
class Region:
    """Cells of every session with the same visual area, Cre line and layer, pooled."""

    area: str
    cre_line: str | None
    layer: str
    recordings: tuple[Recording, ...]

    @property
    def label(self) -> str:
        return f"{self.area} {cre_short_name(self.cre_line)} L{self.layer}"

    @property
    def n_cells(self) -> int:
        return sum(r.responses.shape[2] for r in self.recordings)

    def mean_responses(self) -> np.ndarray:
        """(images, cells) trial-averaged responses."""
        return np.concatenate([r.responses.mean(axis=1) for r in self.recordings], axis=1)

    def split_halves(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Two (images, cells) means over disjoint random halves of each image's trials."""
        halves_a, halves_b = [], []
        for recording in self.recordings:
            a, b = split_trials(recording.responses, rng)
            halves_a.append(a)
            halves_b.append(b)
        return np.concatenate(halves_a, axis=1), np.concatenate(halves_b, axis=1)

    def model_population(self, populations: Sequence[object]) -> str | None:
        """The IR population that models this region's area and layer, if any."""
        return population_for(populations, self.area, self.layer)


def split_trials(responses: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(images, trials, cells) -> two trial means, each image's trials permuted independently."""
    n_images, n_trials, _ = responses.shape
    half = n_trials // 2
    order = np.argsort(rng.random((n_images, n_trials)), axis=1)
    shuffled = np.take_along_axis(responses, order[:, :, None], axis=1)
    return shuffled[:, :half].mean(axis=1), shuffled[:, half:2 * half].mean(axis=1)


def group_regions(recordings: Sequence[Recording], min_cells: int = 1) -> list[Region]:
    """Regions sorted by area then Cre line then layer; regions with fewer cells are dropped."""
    groups: dict[tuple[str, str, str], list[Recording]] = {}
    for recording in recordings:
        key = (recording.area, str(recording.cre_line), recording.layer)
        groups.setdefault(key, []).append(recording)
    regions = [Region(area=recs[0].area, cre_line=recs[0].cre_line, layer=recs[0].layer,
                      recordings=tuple(recs)) for _, recs in sorted(groups.items())]
    return [region for region in regions if region.n_cells >= min_cells]
