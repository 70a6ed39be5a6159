"""Loading the voxel-scale mouse connectome (Knox et al. 2019) from a local directory.

Two parts, loaded separately so that surface areas need no connectivity:

* ``Atlas``: the CCF annotation volume (structure id per 100 um voxel), the structure tree
  and the flat map. Selects the voxels of an area or a layer ("VISp", "VISp2/3").
* ``VoxelConnectivity``: the model as ``weights @ nodes``; ``weights`` is (source voxels x
  nodes), ``nodes`` is (nodes x target voxels), so the full (source x target) matrix is never
  built, only the blocks a measurement needs. Source and target voxels are CCF indices.

File names are tried in order (plain numpy files first, then the Allen cache's own files);
see ``FILES`` and the README section "Measuring from the voxel connectome".
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnc.errors import UserFileError
from mnc.io.atomic import atomic_open
from mnc.io.textfile import TextFileError, read_json_file
from mnc.measure.flatmap import FlatMap
from mnc.measure.nrrd import read_nrrd
from mnc.measure.structures import StructureTree

HEMISPHERES = ("right", "left", "both")
MAX_PARAMS_BYTES = 1024 * 1024

# What the loader looks for, in order of preference, relative to the model directory.
FILES: dict[str, tuple[str, ...]] = {
    "annotation": ("annotation.npy", "annotation_100.nrrd",
                   "annotation/ccf_2017/annotation_100.nrrd"),
    "structures": ("structures.json", "annotation/ccf_2017/structures.json"),
    "flatmap": ("flatmap.npy",),
    "weights": ("weights.npy", "voxel_model/weights.npy", "weights.csv.gz",
                "voxel_model/weights.csv.gz", "weights.csv"),
    "nodes": ("nodes.npy", "voxel_model/nodes.npy", "nodes.csv.gz",
              "voxel_model/nodes.csv.gz", "nodes.csv"),
    "source_voxels": ("source_voxels.npy", "voxel_model/source_voxels.npy"),
    "source_mask": ("source_mask_params.json", "voxel_model/source_mask_params.json"),
    "target_voxels": ("target_voxels.npy", "voxel_model/target_voxels.npy"),
    "target_mask": ("target_mask_params.json", "voxel_model/target_mask_params.json"),
}


@dataclass(frozen=True)
class Atlas:
    """Annotation, structure tree and flat map: which voxels make up a population, and where."""

    annotation: np.ndarray
    tree: StructureTree
    flatmap: FlatMap
    origin: str = "<atlas>"

    def in_structure(self, voxels: np.ndarray, acronym: str) -> np.ndarray:
        """Boolean per voxel: annotated as the structure or anything below it."""
        labels = self.annotation[voxels[:, 0], voxels[:, 1], voxels[:, 2]]
        return np.isin(labels, self.tree.descendant_ids(acronym))

    def in_hemisphere(self, voxels: np.ndarray, hemisphere: str) -> np.ndarray:
        """Boolean per voxel; the midline is at half the last (left-right) axis, as in the CCF."""
        if hemisphere not in HEMISPHERES:
            raise ValueError(f"hemisphere must be one of {HEMISPHERES}, not {hemisphere!r}")
        midline = self.annotation.shape[2] // 2
        if hemisphere == "right":
            return voxels[:, 2] >= midline
        if hemisphere == "left":
            return voxels[:, 2] < midline
        return np.ones(len(voxels), dtype=bool)

    def voxels_of(self, acronym: str, hemisphere: str) -> np.ndarray:
        """(N, 3) CCF indices of a structure's voxels in one hemisphere, in C order."""
        mask = np.isin(self.annotation, self.tree.descendant_ids(acronym))
        voxels = np.argwhere(mask)
        return voxels[self.in_hemisphere(voxels, hemisphere)]


@dataclass(frozen=True)
class VoxelConnectivity:
    """The voxel model in factored form; ``block`` multiplies out only what is asked for."""

    weights: np.ndarray
    nodes: np.ndarray
    source_voxels: np.ndarray
    target_voxels: np.ndarray
    origin: str = "<voxel model>"

    def __post_init__(self) -> None:
        n_source, n_nodes = self.weights.shape
        if self.nodes.shape[0] != n_nodes:
            raise UserFileError(f"{self.origin}: weights have {n_nodes} columns but nodes have "
                                f"{self.nodes.shape[0]} rows; the model is weights @ nodes")
        if len(self.source_voxels) != n_source:
            raise UserFileError(f"{self.origin}: {len(self.source_voxels)} source voxels but "
                                f"weights have {n_source} rows (one per source voxel)")
        if len(self.target_voxels) != self.nodes.shape[1]:
            raise UserFileError(f"{self.origin}: {len(self.target_voxels)} target voxels but "
                                f"nodes have {self.nodes.shape[1]} columns (one per target voxel)")

    def block(self, source_rows: np.ndarray, target_columns: np.ndarray) -> np.ndarray:
        """Connection weights (selected source voxels x selected target voxels)."""
        weights = np.asarray(self.weights[np.sort(source_rows)], dtype=np.float64)
        nodes = np.asarray(self.nodes[:, np.sort(target_columns)], dtype=np.float64)
        order_rows = np.argsort(np.argsort(source_rows))
        order_columns = np.argsort(np.argsort(target_columns))
        return (weights @ nodes)[order_rows][:, order_columns]


def find_file(directory: Path, kind: str) -> Path | None:
    """The first existing candidate for ``kind``, or None."""
    for name in FILES[kind]:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def require_file(directory: Path, kind: str) -> Path:
    """Like ``find_file``, with a clear error listing the candidates if none exists."""
    found = find_file(directory, kind)
    if found is None:
        raise UserFileError(f"{directory}: no {kind} file found; expected one of "
                            f"{', '.join(FILES[kind])}")
    return found


def load_atlas(directory: str | Path, flatmap: str | Path | None = None) -> Atlas:
    """Annotation, structure tree and flat map from ``directory`` (flat map path overridable)."""
    directory = _existing_directory(directory)
    annotation_path = require_file(directory, "annotation")
    if annotation_path.suffix == ".nrrd":
        annotation = read_nrrd(annotation_path)
    else:
        annotation = _load_npy(annotation_path)
    if annotation.ndim != 3 or not np.issubdtype(annotation.dtype, np.integer):
        raise UserFileError(f"{annotation_path}: expected a 3-D integer volume of structure "
                            f"ids, got shape {annotation.shape} of {annotation.dtype}")
    structures_path = require_file(directory, "structures")
    tree = StructureTree.from_json(structures_path)
    flatmap_path = Path(flatmap) if flatmap is not None else require_file(directory, "flatmap")
    if not flatmap_path.is_file():
        raise UserFileError(f"{flatmap_path}: flat map file not found")
    return Atlas(np.asarray(annotation), tree,
                 FlatMap.from_file(flatmap_path, annotation.shape), str(directory))


def load_connectivity(directory: str | Path, atlas: Atlas,
                      cache_dir: str | Path | None = None) -> VoxelConnectivity:
    """Weights, nodes and voxel lists; CSV matrices are converted to .npy in ``cache_dir``."""
    directory = _existing_directory(directory)
    weights = _load_matrix(require_file(directory, "weights"), cache_dir)
    nodes = _load_matrix(require_file(directory, "nodes"), cache_dir)
    source_voxels = _load_voxels(directory, "source", atlas)
    target_voxels = _load_voxels(directory, "target", atlas)
    return VoxelConnectivity(weights, nodes, source_voxels, target_voxels, str(directory))


def _existing_directory(directory: str | Path) -> Path:
    path = Path(directory)
    if not path.is_dir():
        raise UserFileError(f"{path}: voxel model directory not found")
    return path


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UserFileError(f"{path}: cannot read as a numpy .npy file ({error})") from None


def _load_matrix(path: Path, cache_dir: str | Path | None) -> np.ndarray:
    """A 2-D float matrix from .npy (memory-mapped), gzipped .npy or (gzipped) CSV.

    The Allen cache stores the model under ``.csv.gz`` names; its content is sniffed rather
    than trusted from the name. Reading CSV takes minutes, so the result is kept as .npy.
    """
    with open(path, "rb") as stream:
        head = stream.read(6)
    if head.startswith(b"\x93NUMPY"):
        matrix = _load_npy(path, mmap=True)
    else:
        cached = _converted_path(path, cache_dir)
        if cached is not None and cached.is_file():
            matrix = _load_npy(cached, mmap=True)
        else:
            matrix = _read_text_or_gzip(path)
            if cached is not None:
                with atomic_open(cached, "wb") as stream:
                    np.save(stream, matrix)
    if matrix.ndim != 2:
        raise UserFileError(f"{path}: expected a 2-D matrix, got shape {matrix.shape}")
    return matrix


def _read_text_or_gzip(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as stream:
            gzipped = stream.read(2) == b"\x1f\x8b"
        if gzipped:
            with gzip.open(path, "rb") as stream:
                if stream.read(6) == b"\x93NUMPY":
                    stream.seek(0)
                    return np.load(stream, allow_pickle=False)
        return np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, EOFError, ValueError) as error:
        raise UserFileError(f"{path}: cannot read as a comma-separated or .npy matrix "
                            f"({error})") from None


def _converted_path(path: Path, cache_dir: str | Path | None) -> Path | None:
    if cache_dir is None:
        return None
    stat = path.stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()
    digest = hashlib.sha256(identity).hexdigest()[:16]
    return Path(cache_dir) / f"{path.name.split('.')[0]}-{digest}.npy"


def _load_voxels(directory: Path, side: str, atlas: Atlas) -> np.ndarray:
    """Voxel coordinates of the model's rows (source) or columns (target).

    Either listed explicitly (``<side>_voxels.npy``, N x 3 CCF indices) or rebuilt from the
    Allen mask parameters: every voxel annotated in the listed structures (or below them),
    restricted to a hemisphere, in C order of the volume, as the Allen mask orders them.
    """
    listed = find_file(directory, f"{side}_voxels")
    if listed is not None:
        voxels = _load_npy(listed)
        if voxels.ndim != 2 or voxels.shape[1] != 3 or not np.issubdtype(voxels.dtype,
                                                                           np.integer):
            raise UserFileError(f"{listed}: expected an (N, 3) integer array of CCF voxel "
                                f"indices, got shape {voxels.shape} of {voxels.dtype}")
        upper = np.array(atlas.annotation.shape)
        if len(voxels) and (voxels.min() < 0 or np.any(voxels.max(axis=0) >= upper)):
            raise UserFileError(f"{listed}: voxel indices fall outside the annotation volume "
                                f"of shape {tuple(upper)}")
        return voxels.astype(np.int64)
    params_path = require_file(directory, f"{side}_mask")
    structure_ids, hemisphere_id = _read_mask_params(params_path)
    ids: list[int] = []
    for structure_id in structure_ids:
        if structure_id not in atlas.tree.acronym_of:
            raise UserFileError(f"{params_path}: structure id {structure_id} is not in "
                                f"{atlas.tree.origin}")
        ids.extend(atlas.tree.descendant_ids_of(structure_id))
    voxels = np.argwhere(np.isin(atlas.annotation, ids))
    hemisphere = {1: "left", 2: "right", 3: "both"}[hemisphere_id]
    return voxels[atlas.in_hemisphere(voxels, hemisphere)].astype(np.int64)


def _read_mask_params(path: Path) -> tuple[Sequence[int], int]:
    try:
        params = read_json_file(path, MAX_PARAMS_BYTES, "mask parameters (JSON)")
        structure_ids = [int(value) for value in params.get("structure_ids", [8])]
        hemisphere_id = int(params.get("hemisphere_id", 3))
    except (TextFileError, ValueError, TypeError, AttributeError) as error:
        raise UserFileError(f"{path}: expected JSON with 'structure_ids' (list of ints) and "
                            f"'hemisphere_id' (1, 2 or 3): {error}") from None
    if hemisphere_id not in (1, 2, 3):
        raise UserFileError(f"{path}: field 'hemisphere_id' must be 1 (left), 2 (right) or "
                            f"3 (both), not {hemisphere_id}")
    return structure_ids, hemisphere_id
