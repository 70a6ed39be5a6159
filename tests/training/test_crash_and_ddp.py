"""Real processes: a run killed with SIGKILL resumes exactly; a 2-process DDP run on CPU."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY_SPEC
from tests.training.conftest import SMALL_RUN_FLAGS, subprocess_env

torch = pytest.importorskip("torch")

from mnc_backends.torch.training import checkpoint, train  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.slow]


def _steps_saved(path: Path) -> int:
    try:
        return int(checkpoint.load_checkpoint(path)["step"])
    except Exception:  # not written yet; a torn file would fail the final checks below
        return 0


def test_kill_9_mid_run_leaves_loadable_checkpoints_and_resumes_exactly(tmp_path: Path,
                                                                        reference_run):
    folder = tmp_path / "run"
    command = [sys.executable, "-m", "mnc", "train", str(TINY_SPEC), "-o", str(folder),
               *SMALL_RUN_FLAGS, "--checkpoint-every-steps", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env=subprocess_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while _steps_saved(folder / "last.pt") < 1 and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL, f"run ended before the kill: {err[-2000:]}"

    for path in folder.glob("*.pt"):
        checkpoint.load_checkpoint(path)  # every checkpoint left behind is complete
    resumed = train(None, None, resume=folder)
    assert resumed["steps"] == 6 and resumed["epochs"] == 2
    assert resumed["rank_fingerprints"] == reference_run["rank_fingerprints"]
    assert not list(folder.glob(".*.part"))


def test_two_process_ddp_on_cpu_ends_with_identical_weights(tmp_path: Path):
    folder = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "mnc", "train", str(TINY_SPEC), "-o", str(folder),
               *SMALL_RUN_FLAGS, "--json"]
    result = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    fingerprints = summary["rank_fingerprints"]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]
    assert summary["steps"] == 6  # 3 steps per epoch on each rank, 8 images each
    assert json.loads((folder / "run.json").read_text())["world_size"] == 2
    saved = checkpoint.load_checkpoint(folder / "last.pt")
    assert saved["world_size"] == 2 and saved["epoch"] == 2
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[-1])["train_images"] == 48
