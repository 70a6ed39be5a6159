"""Feedforward/feedback calls of interareal projections from Cre-line tracer data.

Harris et al. 2019 (Nature 575:195) classified every corticocortical projection of a Cre-line
injection as feedforward (+1) or feedback (-1) by its pattern of layer terminations, each call
with a confidence. This module reads a table of those calls (JSON: ``projections``, a list of
``{source, target, creline, ffb, confidence}``; ``hierarchy_score`` per area) and condenses
them per pair of areas:

- the pair's call is the confidence-weighted mean ``sum(ffb * confidence) / sum(confidence)``
  over its Cre lines, from -1 (every line says feedback) to +1;
- a pair is feedback when that call is at most ``FEEDBACK_THRESHOLD`` (-0.5): the confidence
  of the lines calling feedback is at least three times that of the lines calling
  feedforward, so one uncertain line cannot flip a pair;
- its source layers are the modelled layers whose own lines (each line's labelled layer,
  ``CRE_LAYERS``) call it feedback on balance (weighted call below 0). Layer-6 lines (Ntsr1,
  Syt6) are reported apart: MouseNet has no layer 6.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

FEEDBACK_THRESHOLD = -0.5
"""A pair is feedback when its confidence-weighted call is at most this (see the module)."""

CRE_LAYERS: dict[str, tuple[str, ...]] = {
    "Cux2": ("2/3", "4"),
    "Rorb": ("4",),
    "Scnn1a": ("4",),
    "Nr5a1": ("4",),
    "Tlx3": ("5",),
    "Rbp4": ("5",),
    "Sim1": ("5",),
    "Chrna2": ("5",),
    "A930038C07Rik": ("5",),
    "Efr3a": ("5",),
    "Ntsr1": ("6",),
    "Syt6": ("6",),
    "Sepw1": ("2/3", "5"),
}
"""Labelled layers of each Cre driver (by the name before its first "-"), as Harris et al. 2019
Fig. 1 and Extended Data list them."""


@dataclass(frozen=True)
class Call:
    creline: str
    ffb: int
    confidence: float

    @property
    def layers(self) -> tuple[str, ...]:
        return CRE_LAYERS[self.creline.split("-", 1)[0]]


@dataclass(frozen=True)
class PairCall:
    """The calls of one source area -> target area pair, condensed."""

    source: str
    target: str
    calls: tuple[Call, ...]

    @property
    def call(self) -> float:
        """Confidence-weighted call, -1 (feedback) to +1 (feedforward)."""
        return weighted_call(self.calls)

    @property
    def feedback(self) -> bool:
        return self.call <= FEEDBACK_THRESHOLD

    def layer_call(self, layer: str) -> float | None:
        """The weighted call of the lines labelling ``layer``; None if none does."""
        lines = [call for call in self.calls if layer in call.layers]
        return weighted_call(lines) if lines else None

    def source_layers(self, modelled: Iterable[str]) -> list[str]:
        """Modelled layers whose lines call the pair feedback on balance."""
        return [
            layer for layer in modelled if (call := self.layer_call(layer)) is not None and call < 0
        ]


def weighted_call(calls: Iterable[Call]) -> float:
    calls = list(calls)
    total = sum(call.confidence for call in calls)
    return sum(call.ffb * call.confidence for call in calls) / total


@dataclass(frozen=True)
class HierarchyTable:
    scores: dict[str, float]
    """Area -> hierarchy score after the iterative correction (higher = higher)."""
    pairs: dict[tuple[str, str], PairCall]

    def feedback_pairs(self, areas: Iterable[str]) -> list[PairCall]:
        """Pairs among ``areas`` the data call feedback, sorted by source and target."""
        kept = set(areas)
        return [
            pair
            for key, pair in sorted(self.pairs.items())
            if pair.feedback and key[0] in kept and key[1] in kept
        ]


def load_hierarchy_table(path: str | Path) -> HierarchyTable:
    """The table at ``path`` (the format of the module docstring)."""
    data = json.loads(Path(path).read_text())
    grouped: dict[tuple[str, str], list[Call]] = defaultdict(list)
    for row in data["projections"]:
        grouped[(row["source"], row["target"])].append(
            Call(row["creline"], int(row["ffb"]), float(row["confidence"]))
        )
    scores = {area: float(entry["final"]) for area, entry in data["hierarchy_score"].items()}
    return HierarchyTable(
        scores, {key: PairCall(*key, tuple(calls)) for key, calls in grouped.items()}
    )
