"""``mnc bench --quick`` runs end to end, prints or writes the JSON report (a smoke test, not
speed)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import TINY_SPEC, run_mnc

pytestmark = [pytest.mark.torch, pytest.mark.slow]

KEYS = {"eval_b2_speedup", "eval_b1_speedup", "train_b2_speedup", "onnx_b2_speedup",
        "max_abs_diff", "machine", "torch_version"}
"""At --batch 2: the keys name the batch they were measured at."""


def test_quick_bench_prints_table_and_writes_json(tmp_path):
    report = tmp_path / "bench.json"
    result = run_mnc("bench", str(TINY_SPEC), "--quick", "--batch", "2", "--no-onnx",
                     "-o", str(report))
    assert result.returncode == 0, result.stderr
    assert "strategy" in result.stdout and "merged" in result.stdout
    assert result.stderr.startswith(f"mnc bench: timing every strategy on {TINY_SPEC}: "
                                    "batches 1 and 2, 1 round(s) each, device cpu\n")
    data = json.loads(report.read_text())
    assert KEYS <= set(data) and "eval_b64_speedup" not in data
    assert data["max_abs_diff"] < 1e-4
    assert data["masked_taps_zero_gradient"] is True
    modes = {(row["mode"], row["strategy"]) for row in data["rows"]}
    assert {("eval", "reference"), ("eval", "merged"), ("train", "merged")} <= modes


def test_amp_rows_are_reported_apart_from_the_exact_ones(tmp_path):
    """--amp (on by default for CUDA) adds bfloat16-autocast rows; their larger differences
    do not count against the 1e-4 of the exact strategies."""
    result = run_mnc("bench", str(TINY_SPEC), "--quick", "--batch", "2", "--no-onnx", "--amp",
                     "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # --json: the report on standard output, nothing else
    modes = {(row["mode"], row["strategy"]) for row in data["rows"]}
    assert {("eval", "merged+amp"), ("eval", "plain+amp"), ("train", "merged+amp")} <= modes
    assert data["max_abs_diff"] < 1e-4 and data["amp_max_abs_diff"] is not None
    from mnc_backends.torch.fast import native

    assert data["device"] == "cpu"
    assert data["auto_train_strategy"] == ("sparse" if native.available() else "merged")


def test_load_and_gradients_are_recorded(tmp_path):
    """Every row carries the load average it ran at; --gradients compares each float32
    training strategy with float64 (plain's own ratio is 1); the physical limit is reported."""
    from mnc_backends.torch.fast import native

    result = run_mnc("bench", str(TINY_SPEC), "--quick", "--batch", "2", "--no-onnx",
                     "--gradients", "--max-load", "1000", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert all(row["load"] is not None for row in data["rows"])
    assert data["waited_for_quiet_s"] is not None and data["load_average_start"] is not None
    gradients = {row["strategy"]: row for row in data["gradients"]}
    assert gradients["plain"]["ratio_to_plain"] == 1.0
    assert set(gradients) == {"plain", "merged"} | ({"sparse"} if native.available() else set())
    assert all(0 < row["worst"] < 1e-2 for row in gradients.values())
    assert data["kept_macs_per_image"] > 0 and data["machine_macs_per_s"] > 0
    if native.available():
        assert ("train", "sparse") in {(row["mode"], row["strategy"]) for row in data["rows"]}
        assert 0 < data["sparse_train_fraction_of_machine"] < 1


def test_unknown_or_missing_device_is_a_clear_error():
    result = run_mnc("bench", str(TINY_SPEC), "--quick", "--device", "toaster")
    assert result.returncode != 0 and "--device 'toaster'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_batch_is_a_user_error(tmp_path):
    result = run_mnc("bench", str(TINY_SPEC), "--quick", "--batch", "0")
    assert result.returncode == 2
    assert "--batch" in result.stderr
