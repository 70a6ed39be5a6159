"""Derivation passes, each a pure function over the draft IR, run in this order."""

from mnc.passes.base import Pass, PassManager, PassResult
from mnc.passes.count_channels import CountChannels
from mnc.passes.match_grids import MatchGrids
from mnc.passes.scale_widths import ScaleWidths
from mnc.passes.set_peak_probabilities import SetPeakProbabilities
from mnc.passes.size_grids import SizeGrids
from mnc.passes.size_kernels import SizeKernels
from mnc.passes.size_readout import SizeReadout


def default_passes() -> list[Pass]:
    """The MouseNet derivation (reference README steps 2-6), in dependency order."""
    return [
        SizeGrids(),
        CountChannels(),
        MatchGrids(),
        ScaleWidths(),
        SizeKernels(),
        SetPeakProbabilities(),
        SizeReadout(),
    ]


__all__ = [
    "CountChannels",
    "MatchGrids",
    "Pass",
    "PassManager",
    "PassResult",
    "ScaleWidths",
    "SetPeakProbabilities",
    "SizeGrids",
    "SizeKernels",
    "SizeReadout",
    "default_passes",
]
