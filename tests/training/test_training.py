"""Training end to end on real data (digits): learning, records, determinism, exact resume."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mnc.errors import UserFileError
from tests.conftest import TINY_SPEC
from tests.training.conftest import SMALL_RUN_FLAGS, train_small

torch = pytest.importorskip("torch")

from mnc_backends.torch.training import TrainingInterrupted, checkpoint, train  # noqa: E402
from tests.training.parts import sigterm_at_batch  # noqa: E402

pytestmark = pytest.mark.torch

TIMING = ("epoch_seconds", "train_images_per_s", "data_wait_fraction")

# Learning test recipe and threshold: 3 epochs x 8 steps x 32 images (768 images, ~20 s on one
# CPU core), held-out digits (359 images, 20 %). Chance is 10 %; this recipe measured 85.8 %
# top-1 (top-5 99.2 %) on the development machine; we require at least 50 %.
LEARNING_THRESHOLD = 0.50


def _without_timing(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in entry.items() if key not in TIMING}
            for entry in history]


@pytest.mark.slow
def test_tiny_spec_learns_digits_far_above_chance(tmp_path: Path):
    summary = train(TINY_SPEC, tmp_path / "run", overrides={
        "data": "digits", "epochs": 3, "max_steps_per_epoch": 8, "batch_size": 32,
        "lr": 0.05, "schedule": "cosine", "device": "cpu", "workers": 0, "seed": 0,
        "progress": False})
    final = summary["final"]
    print(f"digits held-out top-1 after 768 images: {final['val_top1']:.2%}")
    assert final["val_images"] == 359
    assert final["val_top1"] >= LEARNING_THRESHOLD, final


def test_run_folder_records_config_spec_hash_metrics_and_checkpoints(reference_run):
    folder = Path(reference_run["run"])
    run_info = json.loads((folder / "run.json").read_text())
    assert run_info["content_hash"] == reference_run["content_hash"]
    assert sorted(path.name for path in (folder / "spec").iterdir()) == \
        ["00-mouse.yaml", "01-tiny.yaml"]
    config_text = (folder / "config.yaml").read_text()
    assert "crop_scale:\n- 0.6\n- 1.0" in config_text and "format: digits" in config_text
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    for name in ("last.pt", "best.pt"):
        content = torch.load(folder / name, weights_only=True)  # plain containers only
        assert content["format"] == "mnc.torch-checkpoint"
        assert content["content_hash"] == reference_run["content_hash"]
        assert any(key.endswith(".mask") for key in content["state_dict"])
        assert isinstance(content["config"], dict) and content["rng"]["torch"].dtype == torch.uint8
    last = checkpoint.load_checkpoint(folder / "last.pt")
    assert (last["epoch"], last["step"], last["step_in_epoch"]) == (2, 6, 0)
    assert len(set(reference_run["rank_fingerprints"])) == 1


def test_deterministic_runs_give_identical_weights(tmp_path: Path, reference_run):
    again = train_small(tmp_path / "again")
    assert again["rank_fingerprints"] == reference_run["rank_fingerprints"]
    assert _without_timing([again["final"]]) == _without_timing([reference_run["final"]])


def test_sigterm_mid_epoch_saves_and_resume_continues_exactly(tmp_path: Path, reference_run):
    folder = tmp_path / "run"
    with sigterm_at_batch(5), pytest.raises(TrainingInterrupted,  # epoch 2, step 2 of 3
                                            match="SIGTERM at epoch 2 step 2/3"):
        train_small(folder)
    saved = checkpoint.load_checkpoint(folder / "last.pt")
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 2)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored

    resumed = train(None, None, resume=folder)
    assert resumed["rank_fingerprints"] == reference_run["rank_fingerprints"]
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    reference = Path(reference_run["run"]) / "metrics.jsonl"
    expected = [json.loads(line) for line in reference.read_text().splitlines()]
    assert _without_timing(history) == _without_timing(expected)


def test_a_run_folder_with_results_is_not_reused(reference_run, capsys):
    from mnc.cli.main import main

    folder = reference_run["run"]
    status = main(["train", str(TINY_SPEC), "-o", folder, *SMALL_RUN_FLAGS])
    assert status == 2
    assert "already holds a training run" in capsys.readouterr().err
    with pytest.raises(UserFileError, match="cannot change lr"):
        train(None, None, resume=folder, overrides={"lr": 0.3})


def test_force_clears_old_results(tmp_path: Path):
    from mnc_backends.torch.training import rundir

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.jsonl").write_text("{}\n")
    (folder / ".last.pt.abc.part").write_bytes(b"torn")
    (folder / "notes.txt").write_text("mine")
    rundir.prepare(folder, resume=False, force=True)
    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt"]


def test_evaluate_and_plot_commands(reference_run, capsys, tmp_path: Path):
    from mnc.cli.main import main

    folder = Path(reference_run["run"])
    assert main(["evaluate", str(folder / "last.pt"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    final = reference_run["final"]
    assert (result["top1"], result["top5"], result["images"]) == \
        (final["val_top1"], final["val_top5"], final["val_images"])
    output = tmp_path / "curves.png"
    assert main(["plot", str(folder), "-o", str(output)]) == 0
    with Image.open(output) as image:
        assert image.format == "PNG" and image.size[0] > 600


def test_trains_from_an_image_folder(tmp_path: Path):
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for label in range(10):
            folder = tmp_path / "data" / split / f"n{label:02d}"
            folder.mkdir(parents=True)
            pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "image.png")
    summary = train_small(tmp_path / "run", data=str(tmp_path / "data"), epochs=1,
                          batch_size=5, max_steps_per_epoch=1)
    assert summary["config"]["format"] == "imagefolder"
    assert summary["config"]["hflip"] is True and summary["final"]["val_images"] == 10
