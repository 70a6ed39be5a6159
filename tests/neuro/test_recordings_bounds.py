"""Recordings files are held to the memory limit before anything is allocated: declared
sizes, deflate bombs, stimulus counts whose N x N matrices would not fit, and NetCDF headers
checked before the C library reads them."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.neuro.sources.recording_files import load_netcdf, load_npz, save_npz
from mnc.neuro.sources.recordings import NeuralData

pytestmark = pytest.mark.neuro


def _data(stimuli: int = 6, height: int = 5) -> NeuralData:
    rng = np.random.default_rng(0)
    return NeuralData.from_arrays(
        rng.integers(0, 255, (stimuli, height, height)).astype(np.uint8),
        rng.standard_normal((stimuli, 4, 3)).astype(np.float32),
        np.array(["VISp"] * 3),
        layer=np.array(["L4"] * 3),
    )


def _npy(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def test_recordings_are_held_to_the_memory_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.npz"
    save_npz(_data(height=200), path)
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", str(100_000 / 2**20))
    with pytest.raises(UserFileError, match=f"{path}: array 'images'.*MNC_MAX_MEMORY_MB"):
        load_npz(path)


def test_a_deflate_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    data = _data()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", _npy(np.zeros((6, 2000, 2000), dtype=np.uint8)))
        archive.writestr("responses.npy", _npy(data.responses))
        archive.writestr("area.npy", _npy(data.area))
        archive.writestr("layer.npy", _npy(data.layer))
    assert path.stat().st_size < 100_000
    with pytest.raises(UserFileError, match=f"{path}: array 'images': compressed .* times"):
        load_npz(path)


def test_too_many_stimuli_for_their_matrices_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stimulus is tiny, but N x N Gram matrices and RDMs grow with N squared."""
    path = tmp_path / "many.npz"
    save_npz(_data(stimuli=3000, height=1), path)
    monkeypatch.setenv("MNC_MAX_MEMORY_MB", "64")
    with pytest.raises(UserFileError, match=f"{path}: 3,000 stimuli .* MNC_MAX_MEMORY_MB"):
        load_npz(path)


def _netcdf_classic(attribute_length: int) -> bytes:
    """A NetCDF 3 header with one global text attribute declaring ``attribute_length``
    characters, whatever it holds."""

    def name(text: str) -> bytes:
        raw = text.encode()
        return struct.pack(">i", len(raw)) + raw + b"\0" * (-len(raw) % 4)

    header = b"CDF\x01" + struct.pack(">i", 0)
    header += struct.pack(">ii", 0x0A, 1) + name("cell") + struct.pack(">i", 3)
    header += struct.pack(">ii", 0x0C, 1) + name("title") + struct.pack(">ii", 2, attribute_length)
    header += b"abcd"
    header += struct.pack(">ii", 0, 0)
    return header


def test_a_netcdf_header_declaring_more_than_the_file_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("xarray")
    path = tmp_path / "patched.nc"
    path.write_bytes(_netcdf_classic(2**31 - 8))
    with pytest.raises(UserFileError, match=f"{path}: NetCDF header: attribute 'title'"):
        load_netcdf(path)


def test_a_truncated_netcdf_header_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("xarray")
    path = tmp_path / "short.nc"
    path.write_bytes(_netcdf_classic(4)[:15])
    with pytest.raises(UserFileError, match=f"{path}: NetCDF header"):
        load_netcdf(path)


def test_a_sound_netcdf3_file_is_read(tmp_path: Path) -> None:
    xarray = pytest.importorskip("xarray")
    pytest.importorskip("scipy")
    data = _data()
    path = tmp_path / "ok.nc"
    xarray.Dataset(
        {
            "images": (("stimulus", "y", "x"), data.images.astype(np.int16)),
            "responses": (("stimulus", "trial", "cell"), data.responses),
        },
        coords={"area": ("cell", data.area.astype("S")), "layer": ("cell", data.layer.astype("S"))},
        attrs={"title": "x" * 5},
    ).to_netcdf(path, format="NETCDF3_64BIT", engine="scipy")
    loaded = load_netcdf(path)
    np.testing.assert_array_equal(loaded.responses, data.responses)


def test_an_unknown_text_encoding_is_named(tmp_path: Path) -> None:
    netcdf4 = pytest.importorskip("netCDF4")
    pytest.importorskip("xarray")
    path = tmp_path / "encoding.nc"
    with netcdf4.Dataset(path, "w") as nc:
        for name, size in (
            ("stimulus", 2),
            ("y", 2),
            ("x", 2),
            ("trial", 2),
            ("cell", 2),
            ("nchar", 4),
        ):
            nc.createDimension(name, size)
        nc.createVariable("images", "u1", ("stimulus", "y", "x"))[:] = 0
        nc.createVariable("responses", "f4", ("stimulus", "trial", "cell"))[:] = 0
        for name, values in (("area", ["VISp", "VISl"]), ("layer", ["L4", "L4"])):
            variable = nc.createVariable(name, "S1", ("cell", "nchar"))
            variable[:] = netcdf4.stringtochar(np.array(values, "S4"))
        nc["area"]._Encoding = "no-such-codec"
    with pytest.raises(UserFileError, match=f"{path}: .*no-such-codec"):
        load_netcdf(path)
