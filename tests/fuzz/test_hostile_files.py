"""Streams, devices and repeated bases handed to mnc as files: a bounded read and one message.

Every case runs the real command line in a subprocess with a time and memory limit, so a
reader that follows ``stat`` sizes or re-reads the same base without end fails the test by
timing out instead of hanging the suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TINY_SPEC, cap_memory

MEMORY_LIMIT = 2 * 2**30


def _limit_memory() -> None:
    cap_memory(MEMORY_LIMIT)


def run_bounded(*args: str, stdin: bytes | None = None, timeout: float = 30):
    return subprocess.run([sys.executable, "-m", "mnc", *args], input=stdin,
                          capture_output=True, cwd=ROOT, timeout=timeout,
                          preexec_fn=_limit_memory)


def assert_refused(result, *expected: str) -> str:
    stderr = result.stderr.decode("utf-8", "replace")
    # the documented statuses: 3 for a spec that cannot be read, 2 for any other user error
    assert result.returncode == (3 if "invalid spec" in stderr else 2), stderr
    assert "Traceback" not in stderr
    for text in expected:
        assert text in stderr, stderr
    return stderr


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_spec_from_an_endless_device_is_refused_by_bytes_read(device):
    assert_refused(run_bounded("validate", device), device, "more than")


def test_spec_from_a_pipe_is_read_and_bounded():
    text = TINY_SPEC.read_bytes().replace(b"extends: ../mouse.yaml",
                                          f"extends: {ROOT}/specs/mouse.yaml".encode())
    # "-" is standard input, never a spec name
    for stream, named in (("/dev/stdin", "/dev/stdin"), ("-", "standard input")):
        result = run_bounded("validate", stream, stdin=text)
        assert result.returncode == 0, result.stderr
        assert_refused(run_bounded("validate", stream, stdin=b"#" * (5 * 2**20)),
                       named, "more than")


def test_class_names_from_an_endless_device_are_refused():
    pytest.importorskip("onnx", reason="--class-names belongs to the onnx backend (the onnx extra)")
    assert_refused(run_bounded("compile", str(TINY_SPEC), "--backend", "onnx",
                               "--class-names", "/dev/zero"), "/dev/zero", "more than")


def test_training_config_from_an_endless_device_is_refused():
    pytest.importorskip("torch")
    assert_refused(run_bounded("train", str(TINY_SPEC), "-o", "/nonexistent/run",
                               "--config", "/dev/zero"), "/dev/zero", "more than")


def _base_spec(tmp_path: Path, base: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"extends: {base}\nname: hostile base\n")
    return spec


def test_extends_of_a_character_device_says_what_it_is(tmp_path):
    assert_refused(run_bounded("validate", str(_base_spec(tmp_path, "/dev/zero"))),
                   "character device")


def test_extends_of_a_fifo_says_what_it_is_instead_of_hanging(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    assert_refused(run_bounded("validate", str(_base_spec(tmp_path, "pipe.yaml")),
                               timeout=20), "FIFO")


def test_extends_through_a_symlink_loop_gets_a_message(tmp_path):
    (tmp_path / "loop-a.yaml").symlink_to(tmp_path / "loop-b.yaml")
    (tmp_path / "loop-b.yaml").symlink_to(tmp_path / "loop-a.yaml")
    assert_refused(run_bounded("validate", str(_base_spec(tmp_path, "loop-a.yaml"))),
                   "symbolic link")


def test_bases_repeated_in_a_diamond_fan_are_bounded_in_total_work(tmp_path):
    # Level k lists level k-1 sixteen times: 16**12 resolutions without a cache or a count.
    (tmp_path / "level0.yaml").write_text(TINY_SPEC.read_text().replace(
        "extends: ../mouse.yaml", f"extends: {ROOT / 'specs' / 'mouse.yaml'}"))
    for level in range(1, 13):
        bases = ", ".join([f"level{level - 1}.yaml"] * 16)
        (tmp_path / f"level{level}.yaml").write_text(f"extends: [{bases}]\n")
    assert_refused(run_bounded("validate", str(tmp_path / "level12.yaml"), timeout=30),
                   "extends", "files in total")


def test_a_base_listed_twice_is_read_once_and_still_valid(tmp_path):
    (tmp_path / "base.yaml").write_text(TINY_SPEC.read_text().replace(
        "extends: ../mouse.yaml", f"extends: {ROOT / 'specs' / 'mouse.yaml'}"))
    (tmp_path / "twice.yaml").write_text("extends: [base.yaml, base.yaml]\n")
    result = run_bounded("validate", str(tmp_path / "twice.yaml"))
    assert result.returncode == 0, result.stderr
