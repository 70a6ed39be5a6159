"""Recorded cells grouped into brain regions (area x Cre line x layer) and split-half trials."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mnc.neuro.layers import cell_class, cre_short_name, population_for
from mnc.neuro.sources.recordings import NeuralData


@dataclass(frozen=True)
class Region:
    """Cells of every session with the same visual area, Cre line and layer, pooled."""

    area: str
    cre_line: str | None
    layer: str
    responses: np.ndarray
    """(stimuli, trials, cells) responses of the region's cells, NaN-padded like NeuralData."""
    blocks: tuple[tuple[str, int, int, int], ...]
    """(session, first cell, end cell, trials): runs of cells sharing session and trial count."""
    events: np.ndarray | None = None
    """(stimuli, trials, cells) event magnitudes of the same cells and trials, or None."""

    @property
    def label(self) -> str:
        return f"{self.area} {cre_short_name(self.cre_line)} L{self.layer}"

    @property
    def n_cells(self) -> int:
        return int(self.responses.shape[2])

    @property
    def sessions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(block[0] for block in self.blocks))

    @property
    def response_measure(self) -> str:
        """``events`` where the region's cells have detected events, else ``dff``."""
        return "dff" if self.events is None else "events"

    def physiology_view(self) -> Region:
        """The region with its events as responses, where it has events (the measure the
        Allen analyses compute sparseness on); itself otherwise."""
        if self.events is None:
            return self
        return dataclasses.replace(self, responses=self.events)

    def mean_responses(self) -> np.ndarray:
        """(images, cells) trial-averaged responses."""
        return np.concatenate([self.responses[:, :trials, start:end].mean(axis=1)
                               for _, start, end, trials in self.blocks], axis=1)

    def split_halves(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Two (images, cells) means over disjoint random halves of each image's trials."""
        halves_a, halves_b = [], []
        for _, start, end, trials in self.blocks:
            a, b = split_trials(self.responses[:, :trials, start:end], rng)
            halves_a.append(a)
            halves_b.append(b)
        return np.concatenate(halves_a, axis=1), np.concatenate(halves_b, axis=1)

    def model_population(self, populations: Sequence[object], map_inhibitory: bool = False
                         ) -> str | None:
        """The IR population that models this region's area and layer, if any.

        Regions of inhibitory Cre lines get none unless ``map_inhibitory`` (MouseNet's
        populations are excitatory).
        """
        if not map_inhibitory and cell_class(self.cre_line) == "inhibitory":
            return None
        return population_for(populations, self.area, self.layer)


def split_trials(responses: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(images, trials, cells) -> two trial means, each image's trials permuted independently."""
    n_images, n_trials, _ = responses.shape
    half = n_trials // 2
    order = np.argsort(rng.random((n_images, n_trials)), axis=1)
    shuffled = np.take_along_axis(responses, order[:, :, None], axis=1)
    return shuffled[:, :half].mean(axis=1), shuffled[:, half:2 * half].mean(axis=1)


def _blocks(session: np.ndarray, counts: np.ndarray) -> tuple[tuple[str, int, int, int], ...]:
    blocks: list[tuple[str, int, int, int]] = []
    start = 0
    for index in range(1, len(session) + 1):
        if index == len(session) or session[index] != session[start] or \
                counts[index] != counts[start]:
            blocks.append((str(session[start]), start, index, int(counts[start])))
            start = index
    return tuple(blocks)


def group_regions(data: NeuralData, min_cells: int = 1) -> list[Region]:
    """Regions sorted by area then Cre line then layer; regions with fewer cells are dropped.

    Cells keep their order in ``data`` within a region.
    """
    counts = data.trial_counts
    keys = [(str(a), str(c), str(layer))
            for a, c, layer in zip(data.area, data.cre_line, data.layer, strict=True)]
    members: dict[tuple[str, str, str], list[int]] = {}
    for index, key in enumerate(keys):
        members.setdefault(key, []).append(index)
    regions = []
    for (area, cre_line, layer), cells in sorted(members.items()):
        if len(cells) < min_cells:
            continue
        members_index = np.asarray(cells)
        region_counts = counts[members_index]
        trials = int(region_counts.max())
        responses = data.responses[:, :trials, members_index]
        events = None if data.events is None else data.events[:, :trials, members_index]
        regions.append(Region(area=area, cre_line=cre_line or None, layer=layer,
                              responses=responses, events=events,
                              blocks=_blocks(data.session[members_index], region_counts)))
    return regions
