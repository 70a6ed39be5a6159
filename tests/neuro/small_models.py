"""A small standard CNN and small synthetic recordings for the any-model and trajectory tests.

``build`` is importable as ``--model module:tests.neuro.small_models:build``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mnc.neuro.sources.recordings import NeuralData
from mnc.neuro.sources.synthetic import synthetic_images, synthetic_rates

REGIONS = (("VISp", "Cux2-CreERT2", 175), ("VISp", "Rorb-IRES2-Cre", 275),
           ("VISl", "Cux2-CreERT2", 175))


def build() -> Any:
    """conv(3->4) ReLU pool conv(4->6) ReLU pool flatten linear(6*4*4 -> 10), for 16x16 input."""
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6 * 4 * 4, 10))


def small_recordings(n_images: int = 30, trials: int = 4, cells: int = 8,
                     seed: int = 0) -> NeuralData:
    """Three regions of ``cells`` synthetic cells each (rectified projections + noise)."""
    images = synthetic_images(n_images, 23, 29, seed)
    rng = np.random.default_rng(seed)
    blocks, area, cre, depth = [], [], [], []
    for index, (name, line, um) in enumerate(REGIONS):
        rates = synthetic_rates(images, cells, seed=seed + index + 1)
        blocks.append(rates[:, None, :] + rng.normal(0.0, 0.2, (n_images, trials, cells)))
        area += [name] * cells
        cre += [line] * cells
        depth += [um] * cells
    return NeuralData.from_arrays(images, np.concatenate(blocks, axis=2).astype(np.float32),
                                  area, cre_line=cre, depth_um=depth, source="small synthetic")
