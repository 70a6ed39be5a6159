"""Training checkpoints: plain containers of tensors, written atomically, read weights-only.

A checkpoint holds the saved-model keys of the torch contract (format, format_version,
mnc_version, content_hash, ir_json, state_dict with the masks as buffers) plus optimizer,
scheduler, scaler, rng, epoch, step, step_in_epoch, partial, config and metrics. Random states
are stored as tensors and lists of ints, never as pickled objects, so ``torch.load`` runs with
``weights_only=True``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mnc.errors import UserFileError
from mnc.lowering.weights_format import (
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    HEADER_KEYS,
    MODEL_FORMAT,
    check_header,
)
from mnc.version import __version__
from mnc_backends.torch.safe_save import save_torch_file
from mnc_backends.torch.safetensors_io import read_payload

FORMAT = CHECKPOINT_FORMAT

TRAINING_KEYS = ("optimizer", "scheduler", "rng", "epoch", "step", "config", "metrics")


def rng_state() -> dict[str, Any]:
    """Every random generator a run touches, as tensors and plain lists."""
    legacy = np.random.get_state(legacy=True)
    assert isinstance(legacy, tuple)  # a dict only if the global generator is not MT19937
    kind, keys, position, has_gauss, cached = legacy
    version, python_state, gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached)},
        "python": {"version": int(version), "state": [int(v) for v in python_state],
                   "gauss": gauss},
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"],
                         numpy_state["cached_gaussian"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]),
                     python_state["gauss"]))
    if state.get("cuda") and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash leaves the previous checkpoint or the new one, never half."""
    content = {"format": FORMAT, "format_version": FORMAT_VERSION, "mnc_version": __version__,
               **payload}
    missing = [key for key in (*HEADER_KEYS, *TRAINING_KEYS) if key not in content]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")  # a bug, not a user error
    save_torch_file(content, path)


def load_checkpoint(path: str | Path, *, training: bool = True) -> dict[str, Any]:
    """Read a checkpoint (or, with ``training=False``, also a saved model) weights-only."""
    file = Path(path)
    if not file.is_file():
        raise UserFileError(f"{file}: no such checkpoint file")
    content = read_payload(file, "mnc checkpoint")  # a saved model may be a safetensors file
    allowed = (FORMAT,) if training else (FORMAT, MODEL_FORMAT)
    header = check_header(content, str(file), allowed)
    if header["format"] == FORMAT:
        check_header(header, str(file), allowed, (*HEADER_KEYS, *TRAINING_KEYS))
    return header
