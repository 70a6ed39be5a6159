"""The bounded reader reads a pipe exactly up to its limit, for any size (hypothesis)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="property tests need hypothesis (the test extra)")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=0, max_value=300_000),
       limit=st.integers(min_value=0, max_value=200_000))
def test_bounded_reader_reads_a_pipe_exactly_to_its_limit(size, limit):
    from mnc.io.textfile import TextFileError, read_bounded_bytes

    data = bytes(index % 251 for index in range(size))
    with tempfile.TemporaryDirectory() as folder:
        pipe = Path(folder) / "stream"
        os.mkfifo(pipe)

        def feed() -> None:
            with contextlib.suppress(BrokenPipeError), open(pipe, "wb") as stream:
                stream.write(data)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            assert read_bounded_bytes(pipe, limit) == data and size <= limit
        except TextFileError as error:
            assert size > limit and "more than" in str(error)
        writer.join(timeout=10)
