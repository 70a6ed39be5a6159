"""What a comparison run returns: its tables (pandas DataFrames), files and cache hits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mnc.neuro.regions import Region
from mnc.neuro.representation import FeatureSummary

Tables = dict[str, list[dict[str, Any]]]
"""Rows of each table by name, as the analyses compute and the score cache stores them."""


@dataclass
class Report:
    """What a run produced: tables (pandas DataFrames), written files, whether caches answered.

    Every table's first column is ``model`` (the model's label), so the tables of MouseNet and
    of a baseline concatenate (``pandas.concat``) into one.
    """

    output_dir: Path | None
    files: dict[str, str] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    features_cached: bool = False
    scores_cached: bool = False
    feature_key: str = ""
    summaries: dict[str, FeatureSummary] = field(default_factory=dict, repr=False)
    """Per-population summaries of the model's responses (for RDMs and figures)."""
    regions: list[Region] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir) if self.output_dir else None,
                "files": self.files, "features_cached": self.features_cached,
                "scores_cached": self.scores_cached, "feature_key": self.feature_key,
                "tables": {name: records(table) for name, table in self.tables.items()}}

    def rdms(self) -> Any:
        """xarray Dataset of the model's RDMs (population, image, image) and the regions',
        the images' stimulus index as coordinates, the dissimilarity in the attrs."""
        from mnc.neuro.arrays import rdm_dataset

        return rdm_dataset(self.summaries, self.regions, self.label)

    def to_rsatoolbox(self) -> Any:
        """The same RDMs as one ``rsatoolbox.rdm.RDMs`` (descriptors ``name``, ``kind``:
        model or neural, ``model``; pattern descriptor ``stimulus``), for rsatoolbox's own
        comparisons, inference and plots."""
        from mnc.neuro.interop import report_rdms

        return report_rdms(self.summaries, self.regions, self.label)

    @property
    def label(self) -> str:
        """The model's label (the ``model`` column of every table)."""
        for table in self.tables.values():
            if "model" in table.columns and len(table):
                return str(table["model"].iloc[0])
        return "model"


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a table as plain dicts (JSON-ready: numpy scalars become Python numbers)."""
    return [{key: plain_value(value) for key, value in row.items()}
            for row in table.to_dict(orient="records")]


def plain_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def table_frames(tables: Mapping[str, Sequence[Mapping[str, Any]]], label: str
            ) -> dict[str, pd.DataFrame]:
    """Rows -> DataFrames with the ``model`` column first."""
    frames = {}
    for name, rows in tables.items():
        frame = pd.DataFrame(list(rows))
        if "model" in frame.columns:
            frame = frame.drop(columns="model")
        frame.insert(0, "model", label)
        frames[name] = frame
    return frames
