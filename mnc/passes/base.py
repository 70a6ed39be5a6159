"""Pass infrastructure: a pass is a named pure function DraftIR -> DraftIR.

Each pass declares the fields it requires and provides; ``PassManager`` checks, when the
pipeline is built, that every requirement is provided by the spec (``LOWERED_FIELDS``) or an
earlier pass, so a mis-ordered pipeline fails at construction rather than half-way through;
after each pass it checks that the pass set what it declares it provides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from mnc.errors import MncError, PassError, PassProblem
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
            check_provided(each, result.ir)
            if observe is not None:
                observe(each, result)
            ir = result.ir
        return ir


def check_provided(done: Pass, ir: DraftIR) -> None:
    """A PassError naming ``done`` and the first field it declares but left unset."""
    for declared in sorted(done.provides):
        kind, _, field = declared.partition(".")
        field, _, only = field.partition("[")  # "population.channels[input]": that one only
        only = only.rstrip("]")
        items: list[tuple[str, object]]
        if kind == "population":
            items = [(p.name, p) for p in ir.populations if not only or p.name == only]
        elif kind == "projection":
            items = [(f"{p.source}->{p.target}", p) for p in ir.projections]
        else:
            items = [(kind, getattr(ir, kind))]
        for name, item in items:
            if getattr(item, field, None) is None:
                raise PassError([PassProblem((), f"pass {done.name!r} declares it provides "
                                                 f"{declared!r} but left it unset on {name!r}")])
