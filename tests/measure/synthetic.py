"""A synthetic voxel connectome with known Gaussian projection widths and strengths.

Geometry (100 um voxels, CCF-like axes [AP, DV, ML], midline at ML = 32):
* flat map: a voxel at (x, y, z) lies at (0.1 x, 0.1 z) mm; depth y picks the layer
  (y = 0, 1: layer 2/3; y = 2: layer 4; y = 3: layer 5), so columns collapse on the map;
* VISp: 20 x 20 columns; VISl and VISal: 6 x 6 columns each; mirrored in both hemispheres.

Connectivity into the right hemisphere's VISl4 / VISal4 from the right VISp layers is an
isotropic Gaussian on the flat map with a known sigma per projection, centred on a
retinotopic point inside VISp, with 3 % multiplicative noise. Some VISl4 voxels get a
two-peaked profile, some a profile centred outside VISp (border-peaked). Left-hemisphere VISp
voxels carry random weights, which a correct hemisphere restriction must ignore.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHAPE = (30, 4, 64)
PITCH_MM = 0.1
LAYER_DEPTHS = {"2/3": (0, 1), "4": (2,), "5": (3,)}
AREAS = {  # area -> (structure id, x range, z range on the right hemisphere)
    "VISp": (385, (0, 20), (34, 54)),
    "VISl": (409, (22, 28), (34, 40)),
    "VISal": (402, (22, 28), (46, 52)),
}
LAYER_IDS = {"2/3": 1, "4": 2, "5": 3}  # added to 10 * area id for the layer's structure id
TRUE_SIGMA_MM = {
    ("VISp4", "VISl4"): 0.22, ("VISp2/3", "VISl4"): 0.27, ("VISp5", "VISl4"): 0.32,
    ("VISp4", "VISal4"): 0.30, ("VISp2/3", "VISal4"): 0.18, ("VISp5", "VISal4"): 0.25,
}
AMPLITUDE = {  # per source voxel; layer 2/3 has two voxels per column
    ("VISp4", "VISl4"): 1.0, ("VISp2/3", "VISl4"): 0.9, ("VISp5", "VISl4"): 1.2,
    ("VISp4", "VISal4"): 0.5, ("VISp2/3", "VISal4"): 1.1, ("VISp5", "VISal4"): 2.5,
}
# VISl4 voxels (offsets inside the area's 6 x 6 columns) with a deliberately bad profile.
MULTIMODAL_OFFSETS = {(0, 0), (0, 1), (1, 0)}
BORDER_OFFSETS = {(5, 5), (5, 4), (4, 5)}


def layer_id(area: str, layer: str) -> int:
    return AREAS[area][0] * 10 + LAYER_IDS[layer]


@dataclass
class Synthetic:
    directory: Path
    annotation: np.ndarray
    source_voxels: np.ndarray
    target_voxels: np.ndarray
    full: np.ndarray  # the exact (source x target) weights, weights @ nodes
    bad_kind: dict[int, str]  # target column -> "multimodal" / "border"


def structure_records(areas: Iterable[str] = AREAS) -> list[dict[str, object]]:
    """The structure tree of the visual areas ``areas`` and their layers."""
    records: list[dict[str, object]] = [
        {"id": 997, "acronym": "root", "structure_id_path": "/997/"},
        {"id": 8, "acronym": "grey", "structure_id_path": "/997/8/"},
        {"id": 315, "acronym": "Isocortex", "structure_id_path": "/997/8/315/"},
        {"id": 669, "acronym": "VIS", "structure_id_path": [997, 8, 315, 669]},
    ]
    for area in areas:
        area_id = AREAS[area][0]
        records.append({"id": area_id, "acronym": area,
                        "structure_id_path": [997, 8, 315, 669, area_id]})
        for layer in LAYER_DEPTHS:
            records.append({"id": layer_id(area, layer), "acronym": f"{area}{layer}",
                            "parent_structure_id": area_id})
    return records


def build_annotation() -> np.ndarray:
    annotation = np.zeros(SHAPE, dtype=np.int32)
    midline = SHAPE[2] // 2
    for area, (_, (x0, x1), (z0, z1)) in AREAS.items():
        mirrored = (2 * midline - z1, 2 * midline - z0)
        for layer, depths in LAYER_DEPTHS.items():
            for y in depths:
                for zs in ((z0, z1), mirrored):
                    annotation[x0:x1, y, zs[0]:zs[1]] = layer_id(area, layer)
    return annotation


def build_flatmap() -> np.ndarray:
    x, _, z = np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij")
    flat = np.stack([x * PITCH_MM, z * PITCH_MM], axis=-1).astype(np.float64)
    return flat


def _profile(points: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-np.sum((points - centre) ** 2, axis=1) / (2 * sigma**2))


def build_synthetic(directory: Path, seed: int = 0) -> Synthetic:
    rng = np.random.default_rng(seed)
    annotation = build_annotation()
    flat = build_flatmap()
    source_voxels = np.argwhere(annotation > 0)
    target_ids = [layer_id(a, layer) for a in ("VISl", "VISal") for layer in LAYER_DEPTHS]
    target_voxels = np.argwhere(np.isin(annotation, target_ids))
    midline = SHAPE[2] // 2
    source_labels = annotation[tuple(source_voxels.T)]
    source_right = source_voxels[:, 2] >= midline
    source_points = flat[tuple(source_voxels.T)]
    target_labels = annotation[tuple(target_voxels.T)]
    full = np.zeros((len(source_voxels), len(target_voxels)))
    (_, (vx0, vx1), (vz0, vz1)) = AREAS["VISp"]
    visp_low = np.array([vx0, vz0]) * PITCH_MM
    visp_side = (vx1 - vx0 - 1) * PITCH_MM
    bad_kind: dict[int, str] = {}
    for target in ("VISl", "VISal"):
        _, (tx0, _), (tz0, _) = AREAS[target]
        columns = np.flatnonzero((target_labels == layer_id(target, "4"))
                                 & (target_voxels[:, 2] >= midline))
        for column in columns:
            offset = (int(target_voxels[column, 0] - tx0), int(target_voxels[column, 2] - tz0))
            # retinotopy: the 6 x 6 target maps onto the middle of VISp
            centre = visp_low + visp_side * (0.35 + 0.06 * np.array(offset))
            kind = None
            if target == "VISl" and offset in MULTIMODAL_OFFSETS:
                kind = "multimodal"
            elif target == "VISl" and offset in BORDER_OFFSETS:
                kind = "border"
            if kind:
                bad_kind[int(column)] = kind
            for layer in LAYER_DEPTHS:
                key = (f"VISp{layer}", f"{target}4")
                rows = np.flatnonzero((source_labels == layer_id("VISp", layer)) & source_right)
                points = source_points[rows]
                sigma = TRUE_SIGMA_MM[key]
                if kind == "multimodal":
                    values = (_profile(points, visp_low + visp_side * np.array([0.2, 0.2]), 0.15)
                              + 0.9 * _profile(points, visp_low + visp_side * 0.8, 0.15))
                elif kind == "border":
                    outside = visp_low + np.array([-0.3, visp_side * 0.5])
                    values = _profile(points, outside, sigma)
                else:
                    values = _profile(points, centre, sigma)
                noise = 1 + 0.03 * rng.standard_normal(len(rows))
                full[rows, column] = AMPLITUDE[key] * values * noise
        # left-hemisphere VISp voxels: unrelated weights that must not be used
        left = np.flatnonzero((source_labels // 10 == AREAS["VISp"][0]) & ~source_right)
        full[np.ix_(left, columns)] = rng.uniform(0, 2.0, (len(left), len(columns)))
    # factor the model as weights @ nodes with a well-conditioned mixing matrix
    nodes = np.eye(len(target_voxels)) + 0.05 * rng.standard_normal((len(target_voxels),) * 2)
    weights = full @ np.linalg.inv(nodes)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / "annotation.npy", annotation)
    np.save(directory / "flatmap.npy", flat)
    np.save(directory / "weights.npy", weights)
    np.save(directory / "nodes.npy", nodes)
    np.save(directory / "source_voxels.npy", source_voxels)
    np.save(directory / "target_voxels.npy", target_voxels)
    (directory / "structures.json").write_text(json.dumps(structure_records()))
    return Synthetic(directory, annotation, source_voxels, target_voxels, weights @ nodes,
                     bad_kind)
