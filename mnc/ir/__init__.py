"""Intermediate representation: populations, projections and readout of one network."""

from mnc.ir.model import (
    IR,
    Derivation,
    DraftIR,
    Dynamics,
    Population,
    PopulationDraft,
    Projection,
    ProjectionDraft,
)

__all__ = [
    "IR",
    "Derivation",
    "Dynamics",
    "DraftIR",
    "Population",
    "PopulationDraft",
    "Projection",
    "ProjectionDraft",
]
