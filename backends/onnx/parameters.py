"""The network's tensors as numpy arrays, under the names every mnc backend shares.

Names, shapes and the checks of a weights file are those of ``mnc.lowering.weights_format``;
fresh tensors are ``mnc.lowering.fresh_weights``. This module reads a file (weights-only) and
turns a checked state dict into the arrays the graph needs: masks redrawn from the IR where
the file has none, or the effective mask of a learnable-mask network.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.ir.model import IR, Projection
from mnc.lowering.fresh_weights import fresh_weights
from mnc.lowering.weights_format import (
    as_float32,
    check_content_hash,
    check_header,
    check_state,
    conv_name,
    file_masks,
    norm_name,
    normalised_populations,
    payload_schema,
    strip_wrappers,
)
from mnc.masks import check_file_masks, learned_mask, projection_mask

__all__ = ["Parameters", "check_parameters", "conv_name", "fresh_parameters", "graph_tensors",
           "load_parameters", "load_parameters_and_names", "norm_name", "normalised_populations",
           "read_weights_file"]

Parameters = dict[str, np.ndarray]


def read_weights_file(path: Path) -> tuple[dict[str, Any], str]:
    """(state_dict, content_hash) of a saved model or checkpoint, read weights-only."""
    payload = _read_payload(path)
    return dict(payload["state_dict"]), str(payload["content_hash"])


def _read_payload(path: Path) -> dict[str, Any]:
    from mnc_backends.torch.safetensors_io import read_payload

    if not path.is_file():
        raise UserFileError(f"{path}: no such weights file")
    return check_header(read_payload(path, "weights file"), str(path))


def load_parameters_and_names(ir: IR, path: Path) -> tuple[Parameters, list[str] | None]:
    """The graph's tensors from a weights file, and the class names a training checkpoint
    records (None when the file has none or they do not fit the readout)."""
    payload = _read_payload(path)
    parameters = check_parameters(ir, dict(payload["state_dict"]), str(path),
                                  str(payload["content_hash"]))
    names = payload.get("class_names")
    if not (isinstance(names, list | tuple) and len(names) == ir.readout.classes
            and all(isinstance(name, str) for name in names)):
        names = None
    return parameters, list(names) if names is not None else None


def fresh_parameters(ir: IR) -> Parameters:
    """The untrained network's tensors (the same the torch backend starts from)."""
    return graph_tensors(ir, fresh_weights(ir))


def check_parameters(ir: IR, state: Mapping[str, Any], origin: str,
                     content_hash: str | None = None) -> Parameters:
    """Validate a state dict against the IR and return the tensors the graph needs.

    Masks are optional (drawn from the IR when absent); ``content_hash`` (of a file) must be
    the IR's.
    """
    if content_hash is not None:
        check_content_hash(content_hash, ir, origin)
    state = strip_wrappers(state)
    check_state(ir, state, origin, strict=False)
    check_file_masks(ir, file_masks(ir, state), origin)
    return graph_tensors(ir, state)


def graph_tensors(ir: IR, state: Mapping[str, Any]) -> Parameters:
    """The float32 arrays the graph reads from a checked state dict, in the schema's order:
    every weight, bias and BatchNorm statistic, and per projection the mask that multiplies
    its weight (the file's, the learnable profile's, or drawn from the IR)."""
    projections = {f"{conv_name(projection)}.mask": projection for projection in ir.projections}
    parameters: Parameters = {}
    for name, spec in payload_schema(ir).items():
        if spec.required:
            parameters[name] = as_float32(state[name])
        elif name in projections:
            parameters[name] = _mask(ir, projections[name], spec.shape, state)
    return parameters


def _mask(ir: IR, projection: Projection, shape: tuple[int, ...], state: Mapping[str, Any]
          ) -> np.ndarray:
    key = conv_name(projection)
    if f"{key}.log_peak" in state and f"{key}.log_sigma" in state:
        profile = learned_mask(projection.kernel_size, float(as_float32(state[f"{key}.log_peak"])),
                               float(as_float32(state[f"{key}.log_sigma"])))
        return np.broadcast_to(profile, shape).astype(np.float32)
    if f"{key}.mask" in state:
        return as_float32(state[f"{key}.mask"])
    return projection_mask(ir, projection)


def load_parameters(ir: IR, path: Path) -> Parameters:
    state, content_hash = read_weights_file(path)
    return check_parameters(ir, state, str(path), content_hash)
