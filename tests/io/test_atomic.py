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


HOLD_PART_LOCK = """
import os, sys, time
from mnc.io.atomic import _lock_part
descriptor = os.open(sys.argv[1], os.O_RDWR)
assert _lock_part(descriptor)
print("locked", flush=True)
sys.stdin.readline()
"""


def test_part_file_of_a_live_writer_in_another_pid_namespace_is_kept(tmp_path):
    # A writer in another container sees other process ids: its part file names a pid that
    # does not exist here, yet the writer is alive and holds the file's lock.
    target = tmp_path / "model.onnx"
    foreign = tmp_path / f".{target.name}.{2**22 + 12345}.abcdefgh.part"
    foreign.write_bytes(b"half of a model")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_PART_LOCK, str(foreign)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        write_text_atomic(target, "another writer")
        assert foreign.exists()
    finally:
        holder.communicate("done\n", timeout=30)
    write_text_atomic(target, "after the foreign writer ended")  # its lock is gone: stale
    assert not foreign.exists()


def test_hdf5_style_flock_inside_an_atomic_write_is_not_blocked(tmp_path):
    import fcntl

    with atomic_open(tmp_path / "data.h5", "wb") as stream:
        with open(stream.name, "rb") as again:  # as HDF5 locks the file it creates
            fcntl.flock(again.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        stream.write(b"x")
    assert (tmp_path / "data.h5").read_bytes() == b"x"


def test_the_empty_part_file_of_a_writer_killed_before_writing_goes_at_once(tmp_path):
    # kill -9 between making the temporary file and writing to it: empty, just made, unlocked
    target = tmp_path / "out.txt"
    killed = tmp_path / f".{target.name}.{2**22 + 1}.abcdefgh.part"
    killed.write_bytes(b"")
    write_text_atomic(target, "x")
    assert not killed.exists() and target.read_text() == "x"


@pytest.mark.parametrize("taken", ["locked by the cleaner", "removed by the cleaner"])
def test_a_writer_whose_new_part_file_a_cleaner_takes_makes_another(tmp_path, monkeypatch,
                                                                     taken):
    # In the instant between making its file and locking it, another process's cleaner may
    # take the file for a dead writer's: it holds the file's read lock, or has removed it.
    import tempfile

    from mnc.io import atomic

    target = tmp_path / "out.txt"
    made: list[str] = []
    held: list[int] = []
    real_mkstemp = tempfile.mkstemp

    def mkstemp_then_cleaner(*args, **kwargs):
        handle, name = real_mkstemp(*args, **kwargs)
        made.append(name)
        if len(made) == 1:
            cleaner = os.open(name, os.O_RDONLY)
            assert atomic._lock_part(cleaner, shared=True)
            if taken == "removed by the cleaner":
                os.unlink(name)
                os.close(cleaner)
            else:
                held.append(cleaner)  # the cleaner still holds it when the writer locks
        return handle, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp_then_cleaner)
    write_text_atomic(target, "written")
    assert target.read_text() == "written"
    assert len(made) == 2  # the taken file was given up, a second one written
    for descriptor in held:  # the cleaner finishes: it removes the file it took
        os.unlink(made[0])
        os.close(descriptor)
    assert not list(tmp_path.glob("*.part"))


def test_write_errors_name_the_file_and_keep_the_old_one(tmp_path, monkeypatch):
    import errno

    from mnc.errors import UserFileError

    target = tmp_path / "ir.json"
    target.write_text("old")

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(UserFileError, match=r"ir\.json: cannot write .*No space left"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ir.json"]


def test_output_that_is_a_folder_or_a_long_name_is_one_message(tmp_path):
    from mnc.errors import UserFileError

    with pytest.raises(UserFileError, match="is a folder"):
        write_text_atomic(tmp_path, "x")
    with pytest.raises(UserFileError, match="name too long"):
        write_text_atomic(tmp_path / ("n" * 300), "x")
    long_but_valid = tmp_path / ("v" * 250)
    write_text_atomic(long_but_valid, "fits")
    assert long_but_valid.read_text() == "fits"


def test_read_only_folder_is_one_message(tmp_path, monkeypatch):
    import errno
    import tempfile

    from mnc.errors import UserFileError

    (tmp_path / "out.txt").write_text("old")

    def read_only(*args, dir=None, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(dir))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(UserFileError, match=r"out\.txt: cannot write .*Read-only"):
        write_text_atomic(tmp_path / "out.txt", "new")
    assert (tmp_path / "out.txt").read_text() == "old"


def test_a_fifo_or_device_output_is_written_in_place_not_replaced(tmp_path):
    import stat
    import threading

    pipe = tmp_path / "out.fifo"
    os.mkfifo(pipe)
    received: list[bytes] = []

    def read() -> None:
        with open(pipe, "rb") as stream:
            received.append(stream.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    write_text_atomic(pipe, "through the pipe")
    reader.join(timeout=10)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert received == [b"through the pipe"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.fifo"]


def test_a_full_device_is_one_message_and_stays_a_device(tmp_path):
    import stat

    from mnc.errors import UserFileError

    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(UserFileError, match="/dev/full: cannot write .*No space"):
        write_text_atomic("/dev/full", "x" * 100_000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_writing_through_a_symbolic_link_keeps_the_link(tmp_path):
    real = tmp_path / "models" / "v3.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "current.json"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert sorted(path.name for path in real.parent.iterdir()) == ["v3.json"]
