"""The recordings a comparison reads: a Brain Observatory cache, a file, or data in memory."""

from __future__ import annotations

from pathlib import Path

from mnc.errors import UserFileError
from mnc.neuro.interop import as_recordings
from mnc.neuro.options import NeuralSelection
from mnc.neuro.regions import Region, group_regions
from mnc.neuro.sources.allen import load_natural_scenes
from mnc.neuro.sources.recording_files import is_recordings_file, load_recordings
from mnc.neuro.sources.recordings import NeuralData

NeuralSource = NeuralData | str | Path
"""Recordings in memory, a Brain Observatory cache folder, or an ``.npz``/NetCDF file."""


def load_neural(source: NeuralSource, selection: NeuralSelection,
                cache_root: Path | None) -> tuple[NeuralData, list[Region]]:
    """The selected cells of ``source`` and their regions (each with ``min_cells`` or more).
    ``source`` may also be an ``xarray.Dataset`` or ``rsatoolbox.data.Dataset``
    (``mnc.neuro.interop``)."""
    source = as_recordings(source)
    if isinstance(source, NeuralData) or is_recordings_file(source):
        data = source if isinstance(source, NeuralData) else load_recordings(source)
        data = data.select(selection.areas, selection.cre_lines, selection.depths_um)
    else:
        data = load_natural_scenes(
            source, areas=selection.areas, cre_lines=selection.cre_lines,
            depths_um=selection.depths_um, window=selection.window,
            max_per_group=selection.max_per_group, allow_download=selection.allow_download,
            skip_missing=selection.skip_missing,
            response_cache=cache_root / "responses" if cache_root else None)
    counts = data.trial_counts
    if counts.min() < 2:
        cell = int(counts.argmin())
        raise UserFileError(f"{data.source}: cell {cell} (session {data.session[cell]}) has "
                            f"{int(counts[cell])} trial(s); split-half analyses need at least 2")
    regions = group_regions(data, min_cells=selection.min_cells)
    if not regions:
        raise UserFileError(f"{data.source}: no brain region has at least "
                            f"{selection.min_cells} recorded cells in the selection (lower "
                            "--min-cells)")
    return data, regions
