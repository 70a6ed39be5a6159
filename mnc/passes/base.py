"""Pass infrastructure: a pass is a named pure function DraftIR -> DraftIR.

Each pass declares the fields it requires and provides; ``PassManager`` checks, when the
pipeline is built, that every requirement is provided by the spec (``LOWERED_FIELDS``) or an
earlier pass, so a mis-ordered pipeline fails at construction rather than half-way through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from mnc.errors import MncError
from mnc.ir.model import DraftIR

# Fields set by the front end before any pass runs ("population.x" / "projection.x").
LOWERED_FIELDS = frozenset(
    {
        "population.neurons",
        "population.surface_area_mm2",
        "population.pixels_per_degree",
        "population.channels[input]",
        "projection.profile",
        "readout.populations",
    }
)


@dataclass(frozen=True)
class PassResult:
    ir: DraftIR
    changed: bool


class Pass:
    """Base of derivation passes. Subclasses set ``name``, ``requires``, ``provides``, ``run``."""

    name: ClassVar[str]
    requires: ClassVar[frozenset[str]] = frozenset()
    provides: ClassVar[frozenset[str]] = frozenset()

    def run(self, ir: DraftIR) -> PassResult:
        raise NotImplementedError

    def __call__(self, ir: DraftIR) -> PassResult:
        return self.run(ir)


class PipelineError(MncError):
    """A pass list whose requirements are not met (a programming error in a custom pipeline)."""


class PassManager:
    """Runs an explicit, ordered list of passes; optionally hands each result to an observer."""

    def __init__(self, passes: Sequence[Pass]):
        available = set(LOWERED_FIELDS)
        for each in passes:
            missing = each.requires - available
            if missing:
                raise PipelineError(
                    f"pass {each.name!r} requires {sorted(missing)}, which no earlier pass provides"
                )
            available |= each.provides
        self.passes = list(passes)

    def run(
        self, ir: DraftIR, observe: Callable[[Pass, PassResult], None] | None = None
    ) -> DraftIR:
        for each in self.passes:
            result = each.run(ir)
            if observe is not None:
                observe(each, result)
            ir = result.ir
        return ir
