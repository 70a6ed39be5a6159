"""Atomic writes: the old file survives a writer that fails or is killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mnc.io.atomic import atomic_open, write_text_atomic

UNWIND_ON_SIGTERM = """
import signal
def unwind(*_):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, unwind)
"""
SLOW_WRITER = """
import sys, time
from mnc.io.atomic import atomic_open
with atomic_open(sys.argv[1], "w") as stream:
    for index in range(10_000):
        stream.write("new content line %d\\n" % index)
        stream.flush()
        if index == 10:
            print("writing", flush=True)
        time.sleep(0.001)
"""


def test_failed_write_keeps_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "model.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as stream:
        stream.write("half of the new")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.json"]


def test_successful_write_replaces(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [path.name for path in target.parent.iterdir()] == ["out.txt"]


@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGTERM])
def test_killed_writer_keeps_old_file(tmp_path, kill_signal):
    target = tmp_path / "weights.bin"
    target.write_text("old and complete")
    code = UNWIND_ON_SIGTERM + SLOW_WRITER
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, kill_signal)
    writer.wait(timeout=30)
    assert target.read_text() == "old and complete"
    if kill_signal == signal.SIGTERM:  # unwound: the temporary file is removed at once
        assert [path.name for path in tmp_path.iterdir()] == ["weights.bin"]
    # after kill -9 the next write clears the dead writer's temporary file
    time.sleep(0.05)
    write_text_atomic(target, "newer")
    assert target.read_text() == "newer"
    assert [path.name for path in tmp_path.iterdir()] == ["weights.bin"]


def test_cli_output_is_never_half_written(tmp_path):
    from tests.conftest import DEFAULT_SPEC, run_mnc

    output = tmp_path / "picture.png"
    output.write_bytes(b"previous picture")
    result = run_mnc("draw", str(DEFAULT_SPEC), "-o", str(tmp_path / "picture.gif"))
    assert result.returncode == 2
    assert output.read_bytes() == b"previous picture"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["picture.png"]


def test_written_file_gets_ordinary_permissions(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "x")
    expected = 0o666 & ~_umask()
    assert target.stat().st_mode & 0o777 == expected
    target.chmod(0o640)
    write_text_atomic(target, "y")
    assert target.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
