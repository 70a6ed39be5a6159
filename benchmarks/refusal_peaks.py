"""Peak memory of each hostile-input refusal of the neural comparison and its files.

Every case makes its hostile file in this process, then reads it in a fresh child process
(``python -c``) that prints its own peak resident memory (``VmHWM``, which belongs to the new
process image alone) after the refusal, and the peak right after its imports for comparison.
Run: ``python benchmarks/refusal_peaks.py [CASE ...]``; prints one line per case.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

CHILD = textwrap.dedent("""
    import json, sys, warnings
    def peak():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    IMPORTS
    before = peak()
    outcome = "accepted"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = CALL
            if result is None and caught:
                outcome = "miss: " + str(caught[-1].message)[:160]
        except Exception as error:
            outcome = type(error).__name__ + ": " + str(error)[:160]
    print(json.dumps({"after_imports": before, "peak": peak(), "outcome": outcome}))
""")


def run_child(imports: str, call: str, env: dict[str, str] | None = None) -> dict:
    code = CHILD.replace("IMPORTS", imports).replace("CALL", call)
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=600
    )
    if done.returncode != 0:
        return {"after_imports": 0, "peak": 0, "outcome": "CRASH " + done.stderr[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- files


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text


def _npy(array: np.ndarray) -> bytes:
    import io

    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def deflate_bomb(folder: Path) -> Path:
    """2 GiB of zero grey levels deflated to about 2 MB, with small valid other arrays."""
    path = folder / "bomb.npz"
    stimuli, side = 8, 16384
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("images.npy", "w", force_zip64=True) as stream:
            stream.write(_npy_header((stimuli, side, side), "u1"))
            zeros = bytes(1 << 24)
            for _ in range(stimuli * side * side // len(zeros)):
                stream.write(zeros)
        archive.writestr("responses.npy", _npy(np.zeros((stimuli, 2, 3), np.float32)))
        archive.writestr("area.npy", _npy(np.array(["VISp"] * 3)))
        archive.writestr("layer.npy", _npy(np.array(["L4"] * 3)))
    return path


def many_stimuli(folder: Path) -> Path:
    """25,000 stimuli of 1x1 pixel: a small file whose N x N matrices pass 4 GiB each."""
    from mnc.neuro.sources.recording_files import save_npz
    from mnc.neuro.sources.recordings import NeuralData

    rng = np.random.default_rng(0)
    count = 25_000
    data = NeuralData.from_arrays(
        rng.integers(0, 255, (count, 1, 1)).astype(np.uint8),
        rng.standard_normal((count, 2, 1)).astype(np.float32),
        np.array(["VISp"]),
        layer=np.array(["L4"]),
    )
    path = folder / "many.npz"
    save_npz(data, path)
    return path


def patched_netcdf(folder: Path) -> Path:
    """A NetCDF 3 header whose one global attribute declares 2**31 - 8 characters."""

    def name(text: str) -> bytes:
        raw = text.encode()
        return struct.pack(">i", len(raw)) + raw + b"\0" * (-len(raw) % 4)

    header = b"CDF\x01" + struct.pack(">i", 0)
    header += struct.pack(">ii", 0x0A, 1) + name("cell") + struct.pack(">i", 3)
    header += struct.pack(">ii", 0x0C, 1) + name("title") + struct.pack(">ii", 2, 2**31 - 8)
    header += b"abcd" + struct.pack(">ii", 0, 0)
    path = folder / "patched.nc"
    path.write_bytes(header + bytes(1600))
    return path


def boc_cache(folder: Path) -> Path:
    from mnc.neuro.sources.synthetic import write_one_session_cache

    write_one_session_cache(folder / "boc")
    return folder / "boc"


def session_edit(folder: Path, edit: str) -> Path:
    import h5py

    from mnc.neuro.sources.boc_session import CELL_IDS, DFF_DATA, DFF_TIMESTAMPS

    cache = boc_cache(folder)
    path = next((cache / "ophys_experiment_data").glob("*.nwb"))
    group = "stimulus/presentation/natural_scenes_stimulus"
    with h5py.File(path, "a") as nwb:
        if edit == "external_link":
            outside = folder / "outside.h5"
            with h5py.File(outside, "w") as other:
                other["data"] = nwb[DFF_DATA][()]
            del nwb[DFF_DATA]
            nwb[DFF_DATA] = h5py.ExternalLink(str(outside), "data")
        elif edit == "external_storage":
            ids = nwb[CELL_IDS][()]
            raw = folder / "raw.bin"
            raw.write_bytes(ids.astype("<i8").tobytes())
            del nwb[CELL_IDS]
            nwb.create_dataset(
                CELL_IDS, shape=ids.shape, dtype="<i8", external=[(str(raw), 0, ids.size * 8)]
            )
        elif edit == "virtual":
            ids = nwb[CELL_IDS][()]
            outside = folder / "virtual-source.h5"
            with h5py.File(outside, "w") as other:
                other["ids"] = ids
            layout = h5py.VirtualLayout(shape=ids.shape, dtype=ids.dtype)
            layout[:] = h5py.VirtualSource(str(outside), "ids", shape=ids.shape)
            del nwb[CELL_IDS]
            nwb.create_virtual_dataset(CELL_IDS, layout)
        elif edit == "image_index":
            frames = nwb[f"{group}/data"][()].astype(np.float64)
            frames[3] = 1e300
            del nwb[f"{group}/data"]
            nwb[f"{group}/data"] = frames
        elif edit == "frame_interval":
            count = nwb[DFF_TIMESTAMPS].shape[0]
            del nwb[DFF_TIMESTAMPS]
            nwb[DFF_TIMESTAMPS] = np.arange(count) * 1e-300
        elif edit == "float16_dff":
            # 50 KB on disk: a chunked, compressed float16 dF/F declaring 1,000 x 2,000,000
            del nwb[DFF_DATA]
            nwb.create_dataset(
                DFF_DATA,
                shape=(1000, 2_000_000),
                dtype="f2",
                chunks=(10, 100_000),
                compression="gzip",
                fillvalue=0.5,
            )
            del nwb[DFF_TIMESTAMPS]
            nwb.create_dataset(
                DFF_TIMESTAMPS,
                shape=(2_000_000,),
                dtype="f8",
                chunks=(100_000,),
                compression="gzip",
            )
    return path


# ----------------------------------------------------------------------------- cases


def cases(folder: Path) -> dict[str, tuple[str, str, dict[str, str]]]:
    """name -> (imports, call, environment) of the child."""
    recording = "from mnc.neuro.sources.recording_files import load_recordings"
    session = (
        "from mnc.neuro.sources.allen import read_session, read_template, ResponseWindow\n"
        "from pathlib import Path"
    )
    built: dict[str, tuple[str, str, dict[str, str]]] = {}

    def add(name: str, imports: str, call: str, env: dict[str, str] | None = None) -> None:
        built[name] = (imports, call, env or {})

    add(
        "npz deflate bomb (2 GiB declared)",
        recording,
        f"load_recordings({str(deflate_bomb(folder))!r})",
    )
    add("npz 25,000 1x1 stimuli", recording, f"load_recordings({str(many_stimuli(folder))!r})")
    add(
        "NetCDF attribute length patched to 2 GiB",
        recording,
        f"load_recordings({str(patched_netcdf(folder))!r})",
    )
    for edit in (
        "external_link",
        "external_storage",
        "virtual",
        "image_index",
        "frame_interval",
        "float16_dff",
    ):
        path = session_edit(folder / edit, edit)
        add(f"session {edit}", session, f"read_session(Path({str(path)!r}), ResponseWindow())")
    cache = folder / "cache"
    (cache / "scores").mkdir(parents=True)
    os.mkfifo(cache / "scores" / "key.json")
    add(
        "cache FIFO entry",
        "from mnc.neuro.cache import ScoreCache",
        f"ScoreCache({str(cache)!r}, 'key').load()",
    )
    feature = folder / "features"
    (feature / "features" / "key").mkdir(parents=True)
    (feature / "features" / "key" / "VISp.npz").symlink_to("/etc/passwd")
    add(
        "cache link entry",
        "from mnc.neuro.cache import FeatureCache",
        f"FeatureCache({str(feature)!r}, 'key').load(['VISp'])",
    )
    nan_gram = folder / "nan"
    (nan_gram / "features" / "key").mkdir(parents=True)
    with open(nan_gram / "features" / "key" / "VISp.npz", "wb") as stream:
        np.savez(
            stream,
            gram=np.full((3, 3), np.nan),
            row_sums=np.zeros(3),
            n_units=np.int64(2),
            unit_sample=np.zeros((3, 2), np.float32),
        )
    add(
        "cache NaN Gram matrix",
        "from mnc.neuro.cache import FeatureCache",
        f"FeatureCache({str(nan_gram)!r}, 'key').load(['VISp'])",
    )
    run = folder / "run"
    run.mkdir()
    (run / "checkpoints.json").write_text(
        json.dumps(
            [
                {
                    "epoch": float("inf"),
                    "step": 1,
                    "val_top1": 0.1,
                    "val_top5": 0.5,
                    "file": "checkpoints/epoch-0001.pt",
                }
            ]
        ).replace("Infinity", "1e400")
    )
    add(
        "checkpoints.json epoch 1e400",
        "from mnc.io.checkpoint_index import read_index",
        f"read_index({str(run)!r})",
    )
    spec = folder / "octal.yaml"
    spec.write_text(f"extends: {ROOT / 'specs/variants/tiny.yaml'}\ninput:\n  height_px: 010\n")
    add("spec scalar 010", "import mnc", f"mnc.compile_ir({str(spec)!r})")
    add(
        "recurrent feature path (tiny, 100 steps, 512 images)",
        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.recurrent_irs import tiny_recurrent\nimport mnc\n"
        "from mnc.neuro.model_features import check_feature_memory\n"
        "class M: ir = tiny_recurrent(steps=100)",
        "check_feature_memory(M(), 512, 64)",
        {"MNC_MAX_MEMORY_MB": "2048"},
    )
    return built


def main(selected: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="mnc-refusals-") as temporary:
        for name, (imports, call, env) in cases(Path(temporary)).items():
            if selected and not any(word in name for word in selected):
                continue
            result = run_child(imports, call, env)
            print(
                f"{name}: peak {result['peak'] / 2**20:.0f} MiB (after imports "
                f"{result['after_imports'] / 2**20:.0f} MiB): {result['outcome']}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
