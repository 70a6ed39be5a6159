"""Files mnc writes are strict JSON (no NaN or Infinity tokens), and the ones it reads back
give back what was written: a score cache entry keeps its NaN, a checkpoint index its missing
accuracy, a metrics log its diverged loss as null."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mnc.io import strict_json
from mnc.io.checkpoint_index import KeptCheckpoint, read_index, write_index


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


TABLES = {
    "rsa": [
        {
            "region": "VISp",
            "ssm": 0.5,
            "ssm_std": math.nan,
            "samples": [0.1, math.nan, -0.2],
            "ir_population": None,
        },
    ],
    "predictivity": [{"score": math.nan, "median_r": 0.4}],
}


def test_a_score_cache_entry_is_strict_json_and_reads_back_its_nan(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    from mnc.neuro.cache import ScoreCache

    store = ScoreCache(tmp_path, "key")
    store.save(TABLES)
    entry = _strict(store.path.read_text())
    assert isinstance(entry, dict) and entry["tables"]["rsa"][0]["ssm_std"] is None
    loaded = store.load()
    assert loaded is not None
    row = loaded["rsa"][0]
    assert math.isnan(row["ssm_std"]) and row["ir_population"] is None
    assert row["samples"][0] == 0.1 and math.isnan(row["samples"][1])
    assert math.isnan(loaded["predictivity"][0]["score"])


def test_an_entry_whose_nan_list_does_not_fit_is_a_miss(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    from mnc.neuro.cache import CacheWarning, ScoreCache

    store = ScoreCache(tmp_path, "key")
    store.save(TABLES)
    entry = _strict(store.path.read_text())
    assert isinstance(entry, dict)
    entry["non_finite"].append(["rsa", 0, "region", "nan"])  # points at text, not null
    store.path.write_text(json.dumps(entry))
    with pytest.warns(CacheWarning, match="does not point at a null"):
        assert store.load() is None


def test_an_entry_written_before_strict_json_still_reads(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    from mnc.neuro.cache import ScoreCache

    store = ScoreCache(tmp_path, "key")
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"rsa": [{"ssm": NaN, "region": "VISp"}]}')
    loaded = store.load()
    assert loaded is not None and math.isnan(loaded["rsa"][0]["ssm"])


def test_marks_and_restore_round_trip_any_nesting() -> None:
    value = {"a": [1.0, math.inf, {"b": -math.inf}], "c": math.nan, "d": "x"}
    marks = strict_json.non_finite_marks(value)
    plain = _strict(strict_json.dumps(value))
    assert strict_json.restore_non_finite(plain, marks) is None
    assert plain["a"][1] == math.inf and plain["a"][2]["b"] == -math.inf  # type: ignore[index]
    assert math.isnan(plain["c"]) and plain["d"] == "x"  # type: ignore[index]
    assert strict_json.restore_non_finite(plain, [["a", 9, "nan"]]) is not None


def test_a_checkpoint_index_without_accuracy_is_strict_and_reads_back(tmp_path: Path) -> None:
    kept = [
        KeptCheckpoint(
            epoch=0, step=0, val_top1=math.nan, val_top5=math.nan, file="checkpoints/epoch-0000.pt"
        ),
        KeptCheckpoint(
            epoch=1, step=5, val_top1=0.25, val_top5=0.5, file="checkpoints/epoch-0001.pt"
        ),
    ]
    write_index(tmp_path, kept)
    entries = _strict((tmp_path / "checkpoints.json").read_text())
    assert isinstance(entries, list) and entries[0]["val_top1"] is None
    back = read_index(tmp_path)
    assert math.isnan(back[0].val_top1) and back[1].val_top1 == 0.25


def test_a_diverged_loss_is_null_in_the_metrics_log(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from mnc_backends.torch.training.rundir import read_metrics, write_metrics

    write_metrics(
        tmp_path, [{"epoch": 1, "train_loss": math.nan, "val_loss": math.inf, "val_top1": 0.1}]
    )
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [_strict(line) for line in lines] == [
        {"epoch": 1, "train_loss": None, "val_loss": None, "val_top1": 0.1}
    ]
    assert read_metrics(tmp_path)[0]["train_loss"] is None
