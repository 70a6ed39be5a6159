"""Only PNG and JPEG are opened, nothing starts an external program, and an unreadable image
is skipped and counted by training, evaluation and predict, with or without loader workers.

The bad files: an EPS document named ``.png`` (Pillow would hand it to Ghostscript), a
truncated PNG and a text file named ``.jpg``. A fake ``gs`` on the PATH records whether
anything tried to run Ghostscript.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnc.errors import UserFileError
from mnc.imaging import read_image
from tests.conftest import ROOT, TINY_SPEC
from tests.training.conftest import ONE_THREAD_ENV

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n0 0 moveto 16 16 lineto stroke\n"
BAD_FILES = ("drawing.png", "cut.png", "notes.jpg")
CLASSES = 10  # the tiny spec's readout


def fake_ghostscript(folder: Path) -> tuple[dict[str, str], Path]:
    """(environment whose PATH finds a ``gs`` that records each start, its record file)."""
    record = folder / "gs-started"
    tools = folder / "tools"
    tools.mkdir()
    script = tools / "gs"
    script.write_text(f"#!/bin/sh\necho started >> {record}\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {"PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}, record


def write_bad_files(folder: Path) -> None:
    (folder / "drawing.png").write_bytes(EPS)
    buffer = folder / "whole.png"
    noise = np.random.default_rng(5).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer)
    whole = buffer.read_bytes()
    (folder / "cut.png").write_bytes(whole[:len(whole) // 2])
    buffer.unlink()
    (folder / "notes.jpg").write_text("not an image")


def image_folder(root: Path) -> Path:
    """ImageFolder data for the tiny spec: 2 good images per class in train, 1 in val, and the
    three bad files in the first class of each split."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("val", 1)):
        for label in range(CLASSES):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True)
            for number in range(count):
                pixels = rng.integers(0, 255, (40, 44, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{number}.png")
        write_bad_files(root / split / "c0")
    return root


def test_only_png_and_jpeg_are_opened_and_eps_never_reaches_ghostscript(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin

    environment, record = fake_ghostscript(tmp_path)
    monkeypatch.setenv("PATH", environment["PATH"])
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # look for gs again
    write_bad_files(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "bitmap.png", format="BMP")
    for name in (*BAD_FILES, "bitmap.png"):
        with pytest.raises(UserFileError, match=f"{name}: not a readable image"):
            read_image(tmp_path / name)
    assert not record.exists()


def _mnc(args: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mnc", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=240,
                          env={**os.environ, **ONE_THREAD_ENV, **environment})


@pytest.mark.parametrize("workers", [0, 2])
def test_training_and_evaluation_skip_and_count_unreadable_images(tmp_path, workers):
    environment, record = fake_ghostscript(tmp_path)
    data = image_folder(tmp_path / "data")
    run = tmp_path / "run"
    common = ["--data", str(data), "--workers", str(workers), "--batch-size", "8",
              "--device", "cpu", "--no-progress", "--json"]
    trained = _mnc(["train", str(TINY_SPEC), "-o", str(run), "--epochs", "1", *common],
                   environment)
    assert trained.returncode == 0, trained.stderr[-3000:]
    final = json.loads(trained.stdout)["final"]
    assert final["train_skipped_images"] == 3 and final["val_skipped_images"] == 3
    assert final["train_images"] == 2 * CLASSES and final["val_images"] == CLASSES
    assert "skipped 6 unreadable image(s): 3 in training, 3 in validation" in trained.stderr
    evaluated = _mnc(["evaluate", str(run / "last.pt"), *common], environment)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout)
    assert result["skipped_images"] == 3 and result["images"] == CLASSES
    assert not record.exists()


@pytest.mark.onnx
def test_predict_skips_and_counts_unreadable_images(tmp_path):
    environment, record = fake_ghostscript(tmp_path)
    folder = tmp_path / "photos"
    folder.mkdir()
    write_bad_files(folder)
    Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(folder / "good.png")
    model = tmp_path / "tiny.onnx"
    compiled = _mnc(["compile", str(TINY_SPEC), "--backend", "onnx", "-o", str(model)],
                    environment)
    assert compiled.returncode == 0, compiled.stderr[-3000:]
    predicted = _mnc(["predict", str(model), str(folder), "--json"], environment)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    output = json.loads(predicted.stdout)
    assert [Path(row["file"]).name for row in output["predictions"]] == ["good.png"]
    assert sorted(Path(entry["file"]).name for entry in output["skipped"]) == sorted(BAD_FILES)
    text = _mnc(["predict", str(model), str(folder)], environment)
    assert text.returncode == 0 and "skipped 3 unreadable image(s)" in text.stderr
    assert not record.exists()


def test_every_image_open_in_the_code_restricts_the_decoders():
    calls = []
    for folder in ("mnc", "backends"):
        for source in sorted((ROOT / folder).rglob("*.py")):
            text = source.read_text(encoding="utf-8")
            for line_number, line in enumerate(text.splitlines(), 1):
                if "Image.open(" in line:
                    calls.append((source.relative_to(ROOT), line_number, line))
    assert calls, "mnc reads images somewhere"
    unrestricted = [call for call in calls if "formats=" not in call[2]]
    assert not unrestricted, unrestricted
