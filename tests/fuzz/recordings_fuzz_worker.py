"""Mutates small session and recordings files and reads each one back, in a process of its own
(run by ``test_hostile_recordings.py`` under a memory cap, so a crash or a runaway allocation
fails the test instead of the suite).

Usage: python recordings_fuzz_worker.py KIND SEED SECONDS FOLDER

KIND is ``session`` (a Brain Observatory NWB file), ``npz`` or ``netcdf``. Every mutated file
must load or be refused with ``MncError``; the first other outcome is printed with its case
number and the worker exits 1. On success it prints ``cases=N loaded=L refused=R``.
"""

from __future__ import annotations

import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from mnc.errors import MncError


def _mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    """Overwrite, insert, delete or cut: the byte edits a damaged or hostile file shows."""
    array = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        action = int(rng.integers(4))
        at = int(rng.integers(len(array))) if array else 0
        if action == 0 and array:
            array[at] = int(rng.integers(256))
        elif action == 1:
            array[at:at] = bytes(rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8))
        elif action == 2 and array:
            del array[at : at + int(rng.integers(1, 64))]
        elif action == 3 and rng.random() < 0.2:
            del array[at:]
        if rng.random() < 0.5 and len(array) > 8:  # a large number where a length may be
            spot = int(rng.integers(len(array) - 8))
            array[spot : spot + 8] = int(rng.integers(0, 2**63)).to_bytes(8, "little")
    return bytes(array)


def _seed_files(folder: Path, kind: str) -> tuple[Path, object]:
    """A valid file of ``kind`` and the reader to apply to mutated copies."""
    from mnc.neuro.sources.recording_files import load_netcdf, load_npz, save_npz
    from mnc.neuro.sources.recordings import NeuralData

    rng = np.random.default_rng(0)
    data = NeuralData.from_arrays(
        rng.integers(0, 255, (6, 5, 5)).astype(np.uint8),
        rng.standard_normal((6, 3, 4)).astype(np.float32),
        np.array(["VISp"] * 4),
        layer=np.array(["L4", "L4", "L2/3", "L5"]),
        cell_id=np.arange(4),
    )
    if kind == "session":
        from mnc.neuro.sources.allen import ResponseWindow, read_session, read_template
        from mnc.neuro.sources.synthetic import write_one_session_cache

        seed = write_one_session_cache(folder / "boc", noise_sd=0.1)

        def read(path: Path) -> None:
            read_session(path, ResponseWindow())
            read_template(path)

        return seed, read
    if kind == "npz":
        seed = folder / "seed.npz"
        save_npz(data, seed)
        return seed, load_npz
    import xarray

    seed = folder / "seed.nc"
    xarray.Dataset(
        {
            "images": (("stimulus", "y", "x"), data.images.astype(np.int16)),
            "responses": (("stimulus", "trial", "cell"), data.responses),
        },
        coords={"area": ("cell", data.area.astype("S")), "layer": ("cell", data.layer.astype("S"))},
    ).to_netcdf(seed, format="NETCDF3_64BIT", engine="scipy")
    return seed, load_netcdf


def main(kind: str, seed: int, seconds: float, folder: Path) -> int:
    import warnings

    warnings.simplefilter("ignore")  # readers' RuntimeWarnings on garbage are not the point
    source, read = _seed_files(folder, kind)
    original = source.read_bytes()
    rng = np.random.default_rng(seed)
    deadline = time.monotonic() + seconds
    cases = loaded = refused = 0
    target = folder / f"case{source.suffix}"
    while time.monotonic() < deadline:
        cases += 1
        target.write_bytes(_mutate_bytes(original, rng))
        try:
            read(target)
            loaded += 1
        except MncError:
            refused += 1
        except BaseException:  # noqa: BLE001 - anything else is the finding
            print(f"case {cases} (seed {seed}) of {kind}: not one clear message:")
            traceback.print_exc(file=sys.stdout)
            shutil.copy(target, folder / f"finding{source.suffix}")
            return 1
    print(f"cases={cases} loaded={loaded} refused={refused}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])))
