"""Loading a voxel model directory: plain numpy files and the Allen cache's own formats."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.measure import load_atlas, load_connectivity
from mnc.measure.nrrd import read_nrrd
from mnc.measure.structures import StructureTree
from mnc.measure.voxel_model import _load_matrix
from tests.measure.synthetic import AREAS, Synthetic, layer_id


def write_nrrd(path: Path, volume: np.ndarray, encoding: str = "gzip") -> None:
    header = (f"NRRD0004\n# written by a test\ntype: uint32\ndimension: 3\n"
              f"space: left-posterior-superior\nsizes: {' '.join(map(str, volume.shape))}\n"
              f"endian: little\nencoding: {encoding}\nkey:=value\n\n")
    data = volume.astype("<u4").tobytes(order="F")
    path.write_bytes(header.encode() + (gzip.compress(data) if encoding == "gzip" else data))


@pytest.mark.parametrize("encoding", ["gzip", "raw"])
def test_nrrd_round_trip(tmp_path: Path, encoding: str) -> None:
    volume = np.arange(2 * 3 * 4, dtype=np.uint32).reshape(2, 3, 4) * 7
    write_nrrd(tmp_path / "a.nrrd", volume, encoding)
    assert np.array_equal(read_nrrd(tmp_path / "a.nrrd"), volume)


def test_nrrd_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.nrrd").write_bytes(b"NRRD0004\ntype: complex\nsizes: 2\n\n..")
    with pytest.raises(UserFileError, match=r"bad\.nrrd.*type.*complex"):
        read_nrrd(tmp_path / "bad.nrrd")
    (tmp_path / "plain.nrrd").write_bytes(b"P6 not nrrd")
    with pytest.raises(UserFileError, match="not an NRRD file"):
        read_nrrd(tmp_path / "plain.nrrd")


def test_allen_cache_layout(synthetic: Synthetic, tmp_path: Path) -> None:
    """annotation_100.nrrd, voxel_model/*.csv.gz and mask parameter JSON, as the cache keeps
    them, give the same voxels and weights as the plain numpy layout."""
    source = synthetic.directory
    ccf = tmp_path / "annotation" / "ccf_2017"
    ccf.mkdir(parents=True)
    write_nrrd(ccf / "annotation_100.nrrd", synthetic.annotation)
    api_records = [{**r, "structure_id_path": "/" + "/".join(map(str, r["structure_id_path"]))
                    + "/"} if isinstance(r.get("structure_id_path"), list) else r
                   for r in json.loads((source / "structures.json").read_text())]
    (tmp_path / "structures.json").write_text(json.dumps({"msg": api_records}))
    shutil.copy(source / "flatmap.npy", tmp_path / "flatmap.npy")
    model = tmp_path / "voxel_model"
    model.mkdir()
    (model / "source_mask_params.json").write_text(
        json.dumps({"structure_ids": [669], "hemisphere_id": 3}))
    (model / "target_mask_params.json").write_text(json.dumps(
        {"structure_ids": [AREAS["VISl"][0], AREAS["VISal"][0]], "hemisphere_id": 3}))
    # a rank-4 model keeps the CSV small; the voxel lists come from the mask parameters
    rng = np.random.default_rng(2)
    weights = rng.uniform(size=(len(synthetic.source_voxels), 4))
    nodes = rng.uniform(size=(4, len(synthetic.target_voxels)))
    np.savetxt(model / "weights.csv.gz", weights, delimiter=",")
    with gzip.open(model / "nodes.csv.gz", "wb") as stream:
        np.save(stream, nodes)  # content sniffed: a gzipped .npy under a .csv.gz name
    atlas = load_atlas(tmp_path)
    assert np.array_equal(atlas.annotation, synthetic.annotation)
    cache = tmp_path / "cache"
    connectivity = load_connectivity(tmp_path, atlas, cache)
    assert np.array_equal(connectivity.source_voxels, synthetic.source_voxels)
    assert np.array_equal(connectivity.target_voxels, synthetic.target_voxels)
    assert np.allclose(connectivity.weights, weights)
    assert np.array_equal(connectivity.nodes, nodes)
    assert len(list(cache.glob("weights-*.npy"))) == 1  # the CSV is converted once
    again = load_connectivity(tmp_path, atlas, cache)
    assert isinstance(again.weights, np.memmap)


def test_block_multiplies_out_selected_entries(synthetic: Synthetic) -> None:
    atlas = load_atlas(synthetic.directory)
    connectivity = load_connectivity(synthetic.directory, atlas)
    rows, columns = np.array([40, 3, 17]), np.array([5, 500, 2])
    assert np.allclose(connectivity.block(rows, columns), synthetic.full[np.ix_(rows, columns)])


def test_structure_tree_descendants_and_suggestions() -> None:
    tree = StructureTree([
        {"id": 1, "acronym": "root", "structure_id_path": [1]},
        {"id": 2, "acronym": "VISp", "structure_id_path": "/1/2/"},
        {"id": 3, "acronym": "VISp4", "parent_structure_id": 2},
        {"id": 4, "acronym": "VISp6a", "structure_id_path": [1, 2, 4]},
    ], origin="tree.json")
    assert sorted(tree.descendant_ids("VISp")) == [2, 3, 4]
    assert tree.descendant_ids("VISp4") == [3]
    with pytest.raises(UserFileError, match=r"tree\.json: no structure with acronym 'VISp5'"):
        tree.structure_id("VISp5")
    with pytest.raises(UserFileError, match="record 0 needs an integer 'id'"):
        StructureTree([{"acronym": "x"}], origin="t")


def test_missing_and_malformed_files(synthetic: Synthetic, tmp_path: Path) -> None:
    with pytest.raises(UserFileError, match="voxel model directory not found"):
        load_atlas(tmp_path / "nowhere")
    with pytest.raises(UserFileError, match=r"no annotation file found; expected one of "
                                            r"annotation\.npy"):
        load_atlas(tmp_path)
    for name in ("annotation.npy", "structures.json"):
        shutil.copy(synthetic.directory / name, tmp_path / name)
    np.save(tmp_path / "flatmap.npy", np.zeros((3, 3, 2)))
    with pytest.raises(UserFileError, match=r"flatmap\.npy: flat map has shape \(3, 3, 2\)"):
        load_atlas(tmp_path)
    shutil.copy(synthetic.directory / "flatmap.npy", tmp_path / "flatmap.npy")
    atlas = load_atlas(tmp_path)
    np.save(tmp_path / "weights.npy", np.zeros((4, 2)))
    np.save(tmp_path / "nodes.npy", np.zeros((3, 5)))
    np.save(tmp_path / "source_voxels.npy", synthetic.source_voxels[:4])
    np.save(tmp_path / "target_voxels.npy", synthetic.target_voxels[:5])
    with pytest.raises(UserFileError, match="weights have 2 columns but nodes have 3 rows"):
        load_connectivity(tmp_path, atlas)
    np.save(tmp_path / "nodes.npy", np.zeros((2, 5)))
    np.save(tmp_path / "source_voxels.npy", np.array([[0, 0, 999]] * 4))
    with pytest.raises(UserFileError, match="outside the annotation volume"):
        load_connectivity(tmp_path, atlas)
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(UserFileError, match=r"bad\.csv: cannot read"):
        _load_matrix(tmp_path / "bad.csv", None)


def test_mask_params_hemisphere(synthetic: Synthetic, tmp_path: Path) -> None:
    for name in ("annotation.npy", "structures.json", "flatmap.npy", "weights.npy",
                 "nodes.npy", "target_voxels.npy"):
        shutil.copy(synthetic.directory / name, tmp_path / name)
    (tmp_path / "source_mask_params.json").write_text(
        json.dumps({"structure_ids": [layer_id("VISp", "4")], "hemisphere_id": 2}))
    atlas = load_atlas(tmp_path)
    with pytest.raises(UserFileError, match="400 source voxels but weights have"):
        load_connectivity(tmp_path, atlas)  # right VISp4 only: 20 x 20 voxels
    (tmp_path / "source_mask_params.json").write_text(json.dumps({"hemisphere_id": 5}))
    with pytest.raises(UserFileError, match="'hemisphere_id' must be 1"):
        load_connectivity(tmp_path, atlas)
