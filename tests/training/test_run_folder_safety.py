"""A run folder is never mixed or emptied by accident: a manifest says what mnc wrote, and one
process at a time writes to a folder."""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

import pytest

from mnc.errors import UserFileError
from tests.conftest import TINY_SPEC

pytest.importorskip("torch")

from mnc_backends.torch.training import rundir, train  # noqa: E402

pytestmark = pytest.mark.torch

ONE_STEP = {"data": "digits", "epochs": 1, "batch_size": 16, "max_steps_per_epoch": 1,
            "val_fraction": 0.05, "device": "cpu", "workers": 0, "progress": False}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("safety") / "run"
    train(TINY_SPEC, folder, overrides=ONE_STEP)
    return folder


def test_a_run_writes_a_manifest_of_its_files(finished_run: Path):
    listed = json.loads((finished_run / rundir.MANIFEST).read_text())["files"]
    assert {"last.pt", "best.pt", "metrics.jsonl", "config.yaml", "run.json", "ir.json",
            "spec/00-mouse.yaml", "spec/01-tiny.yaml"} <= set(listed)


def test_force_removes_only_what_the_manifest_lists(tmp_path: Path, capsys):
    folder = tmp_path / "run"
    train(TINY_SPEC, folder, overrides=ONE_STEP)
    (folder / "spec" / "my-notes.yaml").write_text("mine")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "hand-saved.pt").write_bytes(b"mine too")
    (folder / "README").write_text("about this run")
    train(TINY_SPEC, folder, overrides=ONE_STEP, force=True)
    assert (folder / "spec" / "my-notes.yaml").read_text() == "mine"
    assert (folder / "checkpoints" / "hand-saved.pt").read_bytes() == b"mine too"
    assert (folder / "README").read_text() == "about this run"
    assert (folder / "spec" / "01-tiny.yaml").is_file() and (folder / "last.pt").is_file()
    err = capsys.readouterr().err
    assert "spec/my-notes.yaml" in err and "left" in err


def test_force_on_a_folder_without_manifest_keeps_unrecorded_files(tmp_path: Path):
    folder = tmp_path / "run"
    (folder / "spec").mkdir(parents=True)
    (folder / "spec" / "00-mouse.yaml").write_text("copy")
    (folder / "spec" / "keep-me.yaml").write_text("the user's")
    (folder / "run.json").write_text(json.dumps({"spec_copies": ["spec/00-mouse.yaml"]}))
    kept = rundir.prepare(folder, resume=False, force=True)
    assert not (folder / "run.json").exists() and not (folder / "spec" / "00-mouse.yaml").exists()
    assert (folder / "spec" / "keep-me.yaml").read_text() == "the user's"
    assert kept == ["spec/keep-me.yaml"]


def test_manifest_entries_outside_the_folder_are_never_removed(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("not the run's")
    (folder / rundir.MANIFEST).write_text(json.dumps(
        {"format": "mnc.run-manifest", "files": ["../precious.txt", str(outside), "last.pt"]}))
    (folder / "last.pt").write_bytes(b"old")
    rundir.prepare(folder, resume=False, force=True)
    assert outside.read_text() == "not the run's" and not (folder / "last.pt").exists()


def _hold_lock(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / rundir.LOCK, "a")
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def test_a_second_run_on_a_busy_folder_is_refused(tmp_path: Path):
    folder = tmp_path / "run"
    handle = _hold_lock(folder)
    try:
        with pytest.raises(UserFileError, match=f"{folder}.*another mnc train"):
            train(TINY_SPEC, folder, overrides=ONE_STEP)
        assert not (folder / "last.pt").exists()
    finally:
        handle.close()
    train(TINY_SPEC, folder, overrides=ONE_STEP)  # free again once the other run ends
    assert (folder / "last.pt").is_file()


def test_a_second_resume_on_a_busy_folder_is_refused(tmp_path: Path):
    folder = tmp_path / "run"
    train(TINY_SPEC, folder, overrides=ONE_STEP)
    before = (folder / "last.pt").read_bytes()
    handle = _hold_lock(folder)
    try:
        with pytest.raises(UserFileError, match="another mnc train"):
            train(None, None, resume=folder, overrides={"epochs": 2})
    finally:
        handle.close()
    assert (folder / "last.pt").read_bytes() == before


def test_an_input_inside_the_run_folder_is_not_overwritten(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    spec = folder / "config.yaml"
    spec.write_text(f"extends: {TINY_SPEC}\n")
    with pytest.raises(UserFileError, match="config.yaml.*input"):
        train(spec, folder, overrides=ONE_STEP, force=True)
    assert spec.read_text() == f"extends: {TINY_SPEC}\n"
    settings = tmp_path / "other" / "metrics.jsonl"
    settings.parent.mkdir()
    settings.write_text("epochs: 1\n")
    with pytest.raises(UserFileError, match="metrics.jsonl.*input"):
        train(TINY_SPEC, settings.parent, config_file=settings, overrides=ONE_STEP)
    assert settings.read_text() == "epochs: 1\n"
