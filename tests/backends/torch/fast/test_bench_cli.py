"""``mnc bench --quick`` runs end to end and writes the JSON report (a smoke test, not speed)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY_SPEC, run_mnc

pytestmark = [pytest.mark.torch, pytest.mark.slow]

KEYS = {"eval_b64_speedup", "eval_b1_speedup", "train_b64_speedup", "onnx_b64_speedup",
        "max_abs_diff", "machine", "torch_version"}


def test_quick_bench_prints_table_and_writes_json(tmp_path):
    report = tmp_path / "bench.json"
    result = run_mnc("bench", str(TINY_SPEC), "--quick", "--batch", "2", "--no-onnx",
                     "--json", str(report))
    assert result.returncode == 0, result.stderr
    assert "strategy" in result.stdout and "merged" in result.stdout
    data = json.loads(report.read_text())
    assert KEYS <= set(data)
    assert data["max_abs_diff"] < 1e-4
    assert data["masked_taps_zero_gradient"] is True
    modes = {(row["mode"], row["strategy"]) for row in data["rows"]}
    assert {("eval", "reference"), ("eval", "merged"), ("train", "merged")} <= modes


def test_bad_batch_is_a_user_error(tmp_path):
    result = run_mnc("bench", str(TINY_SPEC), "--quick", "--batch", "0")
    assert result.returncode == 2
    assert "--batch" in result.stderr
