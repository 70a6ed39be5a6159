"""Scratch files of the streamed feature path: a full temp folder is one message naming it
(never SIGBUS), scratch folders go away on every exit, and those of killed runs are reclaimed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.io import scratch
from mnc.neuro.model_features import summarize_features

pytestmark = pytest.mark.neuro


class _Model:
    """Features of any size without torch work: one population, ``units`` wide."""

    def __init__(self, units: int):
        self.units = units

    def features(self, images, populations=None):  # noqa: ANN001, ANN201
        import torch

        return {"VISp": torch.ones((images.shape[0], self.units))}


def test_a_full_scratch_folder_is_one_message_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(descriptor: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(scratch, "_reserve", full)
    images = np.zeros((4, 8, 8), dtype=np.float32)
    with pytest.raises(UserFileError, match=f"{tmp_path}.*no space left"):
        summarize_features(_Model(1000), images, batch_size=2, scratch_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_scratch_on_a_small_file_system_is_refused_before_writing(tmp_path: Path) -> None:
    """A real file system asked for more than it has free: refused before anything is mapped."""
    free = os.statvfs(tmp_path)
    too_big = free.f_bavail * free.f_frsize + (1 << 30)
    with (
        pytest.raises(UserFileError, match="no space left"),
        scratch.scratch_folder(tmp_path) as folder,
    ):
        scratch.scratch_array(folder, "0.npy", (too_big // 4, 1), np.float32)
    assert list(tmp_path.iterdir()) == []


def test_scratch_folder_is_removed_after_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), scratch.scratch_folder(tmp_path) as folder:
        scratch.scratch_array(folder, "0.npy", (3, 3), np.float32)
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_folders_of_killed_runs_are_reclaimed_and_live_ones_kept(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import os, sys
        from mnc.io import scratch
        with scratch.scratch_folder({str(tmp_path)!r}) as folder:
            scratch.scratch_array(folder, "0.npy", (100, 10), "float32")
            print(folder, flush=True)
            if sys.argv[1] == "kill":
                os.kill(os.getpid(), 9)
            sys.stdin.readline()
    """)
    env = {**os.environ}
    killed = subprocess.run(
        [sys.executable, "-c", code, "kill"], capture_output=True, text=True, env=env
    )
    stale = Path(killed.stdout.strip())
    assert killed.returncode == -9 and stale.is_dir()
    live = subprocess.Popen(
        [sys.executable, "-c", code, "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        running = Path(live.stdout.readline().strip())
        with scratch.scratch_folder(tmp_path) as mine:
            assert not stale.exists()
            assert running.is_dir()
        assert not mine.exists()
    finally:
        live.communicate("\n", timeout=30)
    assert not running.exists()


def test_summaries_match_with_scratch(tmp_path: Path) -> None:
    images = np.zeros((5, 8, 8), dtype=np.float32)
    summaries = summarize_features(_Model(7), images, batch_size=2, scratch_dir=tmp_path)
    np.testing.assert_allclose(summaries["VISp"].gram, np.full((5, 5), 7.0))
    assert list(tmp_path.iterdir()) == []
