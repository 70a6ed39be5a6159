"""Which cortical layer a Brain Observatory recording samples, and which population models it.

Table of Cre lines (source: de Vries et al. 2020, Nature Neuroscience 23:138, "A large-scale
standardized physiological survey reveals functional organization of the mouse visual cortex",
Fig. 1 and Methods; Allen Brain Observatory Visual Coding technical whitepaper "Overview",
section "Transgenic lines"):

=====================  ==========================  =======================================
Cre line               labelled cells              layer used here
=====================  ==========================  =======================================
Cux2-CreERT2           excitatory, layers 2/3 + 4  by depth, restricted to 2/3 or 4
Rorb-IRES2-Cre         excitatory, layer 4         4
Scnn1a-Tg3-Cre         excitatory, layer 4         4
Nr5a1-Cre              excitatory, layer 4         4
Rbp4-Cre_KL100         excitatory, layer 5         5
Tlx3-Cre_PL56          excitatory, layer 5 (IT)    5
Fezf2-CreER            excitatory, layer 5 (PT)    5
Ntsr1-Cre_GN220        excitatory, layer 6         6 (not modelled by MouseNet)
Emx1, Slc17a7          pan-excitatory              by depth
Sst, Vip, Pvalb        inhibitory                  by depth; not mapped to a population
=====================  ==========================  =======================================

MouseNet's populations model excitatory cells, so regions recorded in an inhibitory line are
left without an IR-mapped population (``cell_class`` "inhibitory" in every table) unless the
user asks for the mapping (``AnalysisOptions.map_inhibitory``, ``--map-inhibitory``); they are
still compared with every population (best population, heatmaps).

Depth bins follow the imaging depths of the survey (de Vries et al. 2020, Fig. 1c): layer 2/3
at 175-250 um, layer 4 at 250-325 um (275 um sessions), layer 5 at 325-500 um (350-375 um
sessions), layer 6 from 500 um.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

ALLEN_AREAS: tuple[str, ...] = ("VISp", "VISl", "VISal", "VISrl", "VISam", "VISpm")
"""Visual areas imaged by the Brain Observatory (targeted_structure acronyms)."""

# Cre line prefix (text before the first "-") -> fixed layer, or None to decide by depth.
_CRE_LAYER: dict[str, str | None] = {
    "Rorb": "4", "Scnn1a": "4", "Nr5a1": "4",
    "Rbp4": "5", "Tlx3": "5", "Fezf2": "5",
    "Ntsr1": "6",
    "Cux2": None, "Emx1": None, "Slc17a7": None,
    "Sst": None, "Vip": None, "Pvalb": None,
}
_CRE_ALLOWED: dict[str, tuple[str, ...]] = {"Cux2": ("2/3", "4")}
INHIBITORY_CRE: frozenset[str] = frozenset({"Sst", "Vip", "Pvalb"})

# Upper bounds (um, exclusive) of the depth bins.
_DEPTH_BINS: tuple[tuple[float, str], ...] = (
    (250.0, "2/3"), (325.0, "4"), (500.0, "5"), (float("inf"), "6"),
)


def cre_short_name(cre_line: str | None) -> str:
    """``Cux2-CreERT2`` -> ``Cux2``: the gene name that labels plots and table rows."""
    if not cre_line:
        return "unknown"
    return cre_line.split("-")[0]


def cell_class(cre_line: str | None) -> str:
    """"inhibitory" (Sst, Vip, Pvalb), "excitatory" (the other known lines) or "unknown"."""
    short = cre_short_name(cre_line)
    if short in INHIBITORY_CRE:
        return "inhibitory"
    return "excitatory" if short in _CRE_LAYER else "unknown"


def layer_from_depth(depth_um: float) -> str:
    for upper, layer in _DEPTH_BINS:
        if depth_um < upper:
            return layer
    return "6"


def layer_for_recording(cre_line: str | None, depth_um: float) -> str:
    """The cortical layer a recording samples, from its Cre line and imaging depth."""
    short = cre_short_name(cre_line)
    fixed = _CRE_LAYER.get(short)
    if fixed is not None:
        return fixed
    by_depth = layer_from_depth(depth_um)
    allowed = _CRE_ALLOWED.get(short)
    if allowed and by_depth not in allowed:
        # Deeper than the line labels: take the deepest layer it labels.
        return allowed[-1] if depth_um >= 250.0 else allowed[0]
    return by_depth


def population_for(populations: Sequence[Any], area: str, layer: str) -> str | None:
    """Name of the IR population modelling ``area`` + ``layer``; None where the IR has none.

    ``populations`` are IR populations (objects with ``name``, ``area`` and ``layer``).
    """
    for population in populations:
        if population.area == area and population.layer == layer:
            return str(population.name)
    return None
