"""The in-memory recordings form, its .npz/NetCDF files, and regions over NaN-padded trials."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.neuro.regions import group_regions
from mnc.neuro.sources.recording_files import (
    load_netcdf,
    load_npz,
    load_recordings,
    save_recordings,
)
from mnc.neuro.sources.recordings import NeuralData, SessionRecording

pytestmark = pytest.mark.neuro


def _two_sessions(seed: int = 0) -> NeuralData:
    """Session "a": 4 trials x 3 VISp cells; session "b": 2 trials x 2 VISl cells."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (5, 4, 6), dtype=np.uint8)
    return NeuralData.from_sessions(images, [
        SessionRecording("a", "VISp", "Cux2-CreERT2", 175.0, "2/3", np.array([10, 11, 12]),
                         rng.standard_normal((5, 4, 3)).astype(np.float32)),
        SessionRecording("b", "VISl", None, 375.0, "5", np.array([20, 21]),
                         rng.standard_normal((5, 2, 2)).astype(np.float32)),
    ], source="two sessions")


def _assert_same(first: NeuralData, second: NeuralData) -> None:
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.responses, second.responses)
    for name in ("area", "layer", "cre_line", "cell_id", "session", "depth_um"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.fingerprint == second.fingerprint


def test_sessions_are_nan_padded_and_grouped_into_regions() -> None:
    data = _two_sessions()
    assert data.responses.shape == (5, 4, 5)
    np.testing.assert_array_equal(data.trial_counts, [4, 4, 4, 2, 2])
    assert np.isnan(data.responses[:, 2:, 3:]).all()
    assert data.sessions == ("a", "b")
    assert list(data.cre_line) == ["Cux2-CreERT2"] * 3 + [""] * 2
    regions = group_regions(data)
    assert [(r.label, r.n_cells, r.sessions) for r in regions] == [
        ("VISl unknown L5", 2, ("b",)), ("VISp Cux2 L2/3", 3, ("a",))]
    visl = regions[0]
    assert visl.responses.shape == (5, 2, 2)
    np.testing.assert_allclose(visl.mean_responses(), data.responses[:, :2, 3:].mean(axis=1))
    first, second = visl.split_halves(np.random.default_rng(0))
    assert np.isfinite(first).all() and np.isfinite(second).all()


def test_select_keeps_matching_cells_and_drops_empty_trials() -> None:
    data = _two_sessions()
    visl = data.select(areas=["VISl"])
    assert visl.n_cells == 2 and visl.n_trials == 2 and visl.fingerprint != data.fingerprint
    assert data.select(cre_lines=["Cux2-CreERT2"], depths_um=[175]).n_cells == 3
    with pytest.raises(UserFileError, match=r"no recorded cell matches areas=\['VISam'\]"):
        data.select(areas=["VISam"])


def test_from_arrays_derives_layers_and_broadcasts() -> None:
    responses = np.ones((3, 2, 4))
    data = NeuralData.from_arrays(np.zeros((3, 2, 2)), responses, area="VISp",
                                  cre_line=["Rorb-IRES2-Cre", "Cux2-CreERT2", "Cux2-CreERT2",
                                            ""],
                                  depth_um=[375, 175, 300, 420])
    assert list(data.layer) == ["4", "2/3", "4", "5"]
    assert list(data.area) == ["VISp"] * 4 and list(data.session) == ["0"] * 4
    np.testing.assert_array_equal(data.cell_id, np.arange(4))
    assert data.responses.dtype == np.float32
    with pytest.raises(UserFileError, match="cell 0: the layer of Cre line 'Cux2-CreERT2' "
                                            "depends on depth"):
        NeuralData.from_arrays(np.zeros((3, 2, 2)), responses, "VISp", cre_line="Cux2-CreERT2")
    with pytest.raises(UserFileError, match="cell 0: no layer, Cre line or depth"):
        NeuralData.from_arrays(np.zeros((3, 2, 2)), responses, "VISp")


@pytest.mark.parametrize("change, pattern", [
    (lambda a: a.update(responses=a["responses"][:2]), "responses: 2 stimuli but images holds 3"),
    (lambda a: a["responses"].__setitem__((0, 0, 1), np.nan),
     "cell 1: missing trials must be NaN for every stimulus"),
    (lambda a: a["responses"].__setitem__((slice(None), 0, 1), np.nan),
     "cell 1: missing trials must be NaN for every stimulus and come after"),
    (lambda a: a["responses"].__setitem__((0, 0, 0), np.inf), "contains infinite values"),
    (lambda a: a.update(area=["VISp"] * 3), r"area: expected one value or 4 values"),
    (lambda a: a.update(area=["VISp", "", "VISp", "VISp"]), "area: cell 1 has none"),
    (lambda a: a.update(cell_id=[0.5] * 4), "cell_id: expected integers"),
    (lambda a: a.update(images=np.zeros((3, 4))), r"images: expected a non-empty"),
])
def test_bad_arrays_are_refused(change, pattern: str) -> None:
    arrays = {"images": np.zeros((3, 2, 2)), "responses": np.ones((3, 2, 4)), "area": "VISp",
              "layer": "4"}
    change(arrays)
    with pytest.raises(UserFileError, match=pattern):
        NeuralData.from_arrays(source="arrays", **arrays)


@pytest.mark.parametrize("suffix", [".npz", ".nc"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    if suffix == ".nc":
        pytest.importorskip("xarray")
        pytest.importorskip("netCDF4")
    data = _two_sessions()
    path = tmp_path / f"recordings{suffix}"
    save_recordings(data, path)
    back = load_recordings(path)
    _assert_same(data, back)
    assert back.source == str(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _valid_arrays() -> dict[str, np.ndarray]:
    return {"images": np.zeros((3, 2, 2), dtype=np.uint8),
            "responses": np.ones((3, 2, 4), dtype=np.float32),
            "area": np.array(["VISp"] * 4), "layer": np.array(["4"] * 4)}


@pytest.mark.parametrize("change, pattern", [
    (lambda a: a.pop("responses"), "missing array\\(s\\) responses"),
    (lambda a: a.update(typo=np.zeros(1)), "unexpected array\\(s\\) typo"),
    (lambda a: a.pop("layer"), "needs a 'layer' or a 'cre_line' array"),
    (lambda a: a.update(area=np.array(["VISp"] * 4, dtype=object)),
     "array 'area': expected unicode strings, got dtype object"),
    (lambda a: a.update(area=np.array([b"VISp"] * 4)), "array 'area': expected unicode"),
    (lambda a: a.update(responses=np.ones((3, 8), dtype=np.float32)),
     r"array 'responses': expected 3 dimension\(s\), got shape \(3, 8\)"),
    (lambda a: a.update(depth_um=np.zeros((4, 1))), r"array 'depth_um': expected 1 dimension"),
])
def test_malformed_npz_is_named(tmp_path: Path, change, pattern: str) -> None:
    arrays = _valid_arrays()
    change(arrays)
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserFileError, match=pattern) as error:
        load_npz(path)
    assert str(path) in str(error.value)


def _hostile_npz(path: Path, shape: tuple[int, ...], payload: bytes) -> Path:
    """A valid npz whose responses member declares ``shape`` but holds ``payload``."""
    arrays = _valid_arrays()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            if name != "responses":
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, value)
                archive.writestr(f"{name}.npy", buffer.getvalue())
        archive.writestr("responses.npy", b"\x93NUMPY\x01\x00" + header.getvalue()[8:]
                         + payload)
    return path


def test_huge_declared_shape_is_refused_before_allocating(tmp_path: Path) -> None:
    path = _hostile_npz(tmp_path / "huge.npz", (3, 10**9, 10**9), b"\0" * 64)
    with pytest.raises(UserFileError, match=r"array 'responses' declares shape \(3, 1000000000, "
                                            r"1000000000\) \(12,000,000,000,000,000,000 bytes"):
        load_npz(path)
    # Under the limit but larger than the member: refused as cut short, nothing allocated.
    path = _hostile_npz(tmp_path / "short.npz", (3, 2, 10**6), b"\0" * 64)
    with pytest.raises(UserFileError, match="needs 24,000,000 bytes but the member holds"):
        load_npz(path)
    with pytest.raises(UserFileError, match="the limit for all arrays is 100 bytes"):
        load_npz(_npz(tmp_path / "ok.npz", **_valid_arrays()), max_bytes=100)


def test_damaged_npz(tmp_path: Path) -> None:
    path = _npz(tmp_path / "cut.npz", **_valid_arrays())
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(UserFileError, match="not an .npz archive"):
        load_npz(path)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(UserFileError, match="not an .npz archive"):
        load_npz(tmp_path / "text.npz")
    with pytest.raises(UserFileError, match="unknown recordings format '.csv'"):
        load_recordings(tmp_path / "x.csv")


def test_netcdf_without_xarray_names_the_packages(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.nc"
    path.write_bytes(b"CDF\x01")
    monkeypatch.setitem(sys.modules, "xarray", None)
    with pytest.raises(UserFileError, match="needs xarray and a NetCDF engine; install them "
                                            "with pip install xarray netCDF4"):
        load_netcdf(path)
    with pytest.raises(UserFileError, match="needs xarray"):
        save_recordings(_two_sessions(), path)


def test_malformed_netcdf_is_named(tmp_path: Path) -> None:
    xarray = pytest.importorskip("xarray")
    pytest.importorskip("netCDF4")
    data = _two_sessions()
    path = tmp_path / "r.nc"
    xarray.Dataset({"images": (("stimulus", "y", "x"), data.images),
                    "responses": (("stimulus", "cell", "trial"),
                                  data.responses.transpose(0, 2, 1))},
                   coords={"area": ("cell", data.area)}).to_netcdf(path)
    with pytest.raises(UserFileError, match=r"variable 'responses': expected dimensions "
                                            r"\('stimulus', 'trial', 'cell'\)"):
        load_netcdf(path)
    save_recordings(data, path)
    with pytest.raises(UserFileError, match=r"variable 'images' declares shape \(5, 4, 6\) "
                                            r"\(120 bytes\); the limit for all arrays is 100"):
        load_netcdf(path, max_bytes=100)
    path.write_bytes(b"garbage" * 20)
    with pytest.raises(UserFileError, match="r.nc: "):
        load_netcdf(path)
