"""A failed write of a .pt file (full disk, a device that refuses data) is one message naming
the file, like any other write, never torch's RuntimeError; the previous file stays intact."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mnc.errors import UserFileError

torch = pytest.importorskip("torch")

from mnc_backends.torch import safe_save  # noqa: E402
from mnc_backends.torch.safe_save import save_torch_file  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_writing_to_a_full_device_is_one_message() -> None:
    with pytest.raises(UserFileError, match="/dev/full: cannot write"):
        save_torch_file({"weight": torch.ones(1000)}, "/dev/full")


def test_a_full_disk_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    save_torch_file({"epoch": 1}, path)
    before = path.read_bytes()

    def failing_save(content: object, target: object) -> None:
        Path(str(target)).write_bytes(b"half")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:664] . unexpected pos 64 vs "
            "0: PytorchStreamWriter failed writing file data/0: file write failed"
        )

    monkeypatch.setattr(safe_save.torch, "save", failing_save)
    monkeypatch.setattr(safe_save, "_disk_full", lambda path: True)
    with pytest.raises(UserFileError, match=f"(?i){path}: cannot write .*no space left"):
        save_torch_file({"epoch": 2}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
