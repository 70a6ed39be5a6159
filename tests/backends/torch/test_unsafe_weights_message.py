"""A weights file holding Python objects is refused without passing on torch's advice to load
it unsafely (``weights_only=False`` runs the file's code)."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from mnc.errors import UserFileError  # noqa: E402

pytestmark = pytest.mark.torch


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def _readers():
    from mnc_backends.onnx.parameters import read_weights_file as onnx_reader
    from mnc_backends.torch.training.checkpoint import load_checkpoint
    from mnc_backends.torch.weights_io import read_weights_file

    return [read_weights_file, onnx_reader, load_checkpoint]


@pytest.mark.parametrize("content", ["code", "module"])
@pytest.mark.parametrize("reader_index", [0, 1, 2])
def test_refusal_names_the_file_and_gives_no_unsafe_advice(tmp_path, content, reader_index):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": _RunsCode() if content == "code" else torch.nn.Linear(1, 1)},
               path)
    with pytest.raises(UserFileError) as caught:
        _readers()[reader_index](path)
    message = str(caught.value)
    assert str(path) in message
    for advice in ("weights_only` set to `False", "weights_only=False", "add_safe_globals",
                   "safe_globals", "\x1b", "trust"):
        assert advice not in message, message
    assert "system" in message or "Linear" in message  # what the file holds
