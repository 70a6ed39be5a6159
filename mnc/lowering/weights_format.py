"""The weights payload: which tensors an IR implies, under which names, and how a file is checked.

A saved model or training checkpoint is a dict of plain containers::

    {"format": "mnc.torch-model" | "mnc.torch-checkpoint", "format_version": 1,
     "mnc_version": str, "content_hash": str, "ir_json": str, "state_dict": {name: tensor}}

Tensor names (the weights contract): ``convs.<source>__<target>.{weight,bias,mask}``,
``norms.<population>.{weight,bias,running_mean,running_var,num_batches_tracked}`` (a
recurrent network's running statistics ``(steps, C)``, one row per step; files with ``(C,)``
rows shared by the steps, the earlier format, still load),
``classifier.{weight,bias}``, and in the ``learnable`` mask mode also
``convs.<key>.{log_peak,log_sigma}``; the keys come from ``mnc.ir.keys``. Everything here works
on names and shapes (numpy arrays, tensors or anything with ``.shape``), so the torch loader,
the training checkpoint reader and the ONNX exporter refuse the same files with the same words.
A file always carries the IR its weights belong to: a bare state dict is refused everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnc.analysis.limits import check_limits
from mnc.errors import BackendError, SizeLimitError, UserFileError
from mnc.ir.keys import population_key, projection_key
from mnc.ir.model import IR, Population, Projection
from mnc.ir.serialize import ir_from_dict, ir_from_json

MODEL_FORMAT = "mnc.torch-model"
CHECKPOINT_FORMAT = "mnc.torch-checkpoint"
FORMAT_VERSION = 1
HEADER_KEYS = ("content_hash", "ir_json", "state_dict")
WRAPPER_PREFIXES = ("_orig_mod.", "module.")
"""Prefixes torch.compile and DistributedDataParallel add to state-dict names."""
NORM_FIELDS = ("weight", "bias", "running_mean", "running_var")


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int, ...]
    dtype: str
    required: bool
    """Whether inference needs it from a file (masks are redrawn from the IR, counters and
    learnable-profile scalars are optional); a strict loader needs every entry."""


def conv_name(projection: Projection) -> str:
    return f"convs.{projection_key(projection.source, projection.target)}"


def norm_name(population: str) -> str:
    return f"norms.{population_key(population)}"


def normalised_populations(ir: IR) -> Iterator[Population]:
    """Populations with BatchNorm and ReLU: all that receive a projection."""
    targets = {projection.target for projection in ir.projections}
    return (population for population in ir.populations if population.name in targets)


def payload_schema(ir: IR) -> dict[str, TensorSpec]:
    """Every tensor of the network's state dict, in the order of torch's ``state_dict``."""
    schema: dict[str, TensorSpec] = {}
    learnable = ir.mask.mode == "learnable"
    for projection in ir.projections:
        name = conv_name(projection)
        kernel = (projection.out_channels, projection.in_channels, projection.kernel_size,
                  projection.kernel_size)
        schema[f"{name}.weight"] = TensorSpec(kernel, "float32", True)
        schema[f"{name}.bias"] = TensorSpec((projection.out_channels,), "float32", True)
        if learnable:
            schema[f"{name}.log_peak"] = TensorSpec((), "float32", False)
            schema[f"{name}.log_sigma"] = TensorSpec((), "float32", False)
        schema[f"{name}.mask"] = TensorSpec(kernel, "float32", False)
    for population in normalised_populations(ir):
        name = norm_name(population.name)
        for field in NORM_FIELDS:
            schema[f"{name}.{field}"] = TensorSpec(norm_shape(ir, population, field), "float32",
                                                   True)
        schema[f"{name}.num_batches_tracked"] = TensorSpec((), "int64", False)
    schema["classifier.weight"] = TensorSpec((ir.readout.classes, ir.readout.features),
                                             "float32", True)
    schema["classifier.bias"] = TensorSpec((ir.readout.classes,), "float32", True)
    return schema


def norm_shape(ir: IR, population: Population, field: str) -> tuple[int, ...]:
    """A BatchNorm tensor's shape: ``(C,)``, but ``(steps, C)`` for the running statistics of
    a network of several steps (one row per step; one affine map for all)."""
    if ir.dynamics.steps > 1 and field.startswith("running_"):
        return (ir.dynamics.steps, population.channels)
    return (population.channels,)


def shared_statistics(ir: IR, name: str, shape: tuple[int, ...]) -> bool:
    """Whether ``shape`` is the earlier format of the tensor ``name``: running statistics of a
    recurrent network shared by all steps, ``(C,)``; they load copied to every step."""
    return (ir.dynamics.steps > 1 and name.startswith("norms.") and ".running_" in name
            and len(shape) == 1)


def strip_wrappers(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict under the contract's names (prefixes of compiled or DDP models dropped)."""
    stripped = {}
    for name, value in state.items():
        name = str(name)
        while name.startswith(WRAPPER_PREFIXES):  # wrappers nest in either order
            name = name.split(".", 1)[1]
        stripped[name] = value
    return stripped


def as_float32(value: Any) -> np.ndarray:
    """A tensor (on any device) or array-like as a float32 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.is_floating_point() or value.is_complex():
            value = value.float()
        value = value.numpy()
    return np.asarray(value, dtype=np.float32)


def check_state(ir: IR, state: Mapping[str, Any], origin: str, *, strict: bool) -> None:
    """Raise one BackendError naming the first tensor that does not fit the IR's network.

    ``strict``: every tensor of the schema must be present (a torch module loads them all);
    otherwise only those inference needs. Names must already be stripped of wrappers.
    """
    schema = payload_schema(ir)
    for name, spec in schema.items():
        if name not in state:
            if strict or spec.required:
                raise BackendError(f"{origin}: tensor {name!r} is missing from the weights (the "
                                   f"network needs shape {spec.shape})")
            continue
        value = state[name]
        if not hasattr(value, "shape"):
            raise BackendError(f"{origin}: entry {name!r} is a {type(value).__name__}, not a "
                               f"tensor of shape {spec.shape}")
        found = tuple(int(size) for size in value.shape)
        if found != spec.shape and not (shared_statistics(ir, name, found)
                                        and found == spec.shape[1:]):
            raise BackendError(f"{origin}: tensor {name!r} has shape {found} in the file, the "
                               f"network needs {spec.shape}")
    extra = [name for name in state if name not in schema]
    if extra:
        raise BackendError(f"{origin}: tensor {extra[0]!r} in the file has no place in the "
                           f"network ({len(extra)} unexpected tensors)")


def check_content_hash(file_hash: object, ir: IR, origin: str) -> None:
    """Weights load only into the network they were saved from (same IR content hash)."""
    if file_hash != ir.content_hash:
        raise BackendError(
            f"{origin}: weights were saved for a different network: IR content hash "
            f"{str(file_hash)[:12]} in the file, {ir.short_hash} for the network being built; "
            f"compile the spec the weights were trained with, or load the file itself with "
            f"mnc.load")


def check_header(payload: object, origin: str,
                 formats: Sequence[str] = (MODEL_FORMAT, CHECKPOINT_FORMAT),
                 required: Sequence[str] = HEADER_KEYS) -> dict[str, Any]:
    """The file's dict once its format, version and entries are checked (UserFileError)."""
    if not isinstance(payload, Mapping):
        raise UserFileError(f"{origin}: expected an mnc saved model or checkpoint (a dict), "
                            f"found {type(payload).__name__}")
    if "format" not in payload and payload and all(hasattr(value, "shape")
                                                   for value in payload.values()):
        raise UserFileError(f"{origin}: a bare state dict (tensors without the IR they belong "
                            f"to); mnc reads saved models and training checkpoints, which carry "
                            f"their network's IR: save with mnc.save(model, FILE) in Python or "
                            f"`mnc compile SPEC --backend torch -o FILE.pt`)")
    found = payload.get("format")
    if found not in formats:
        raise UserFileError(f"{origin}: format is {found!r}, expected "
                            f"{' or '.join(map(repr, formats))}")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise UserFileError(f"{origin}: format_version {version!r} is not supported (this mnc "
                            f"reads version {FORMAT_VERSION})")
    missing = [key for key in required if key not in payload]
    if missing:
        raise UserFileError(f"{origin}: entry {missing[0]!r} is missing (a {found} file holds "
                            f"{', '.join(required)})")
    if "state_dict" in required and not isinstance(payload["state_dict"], Mapping):
        raise UserFileError(f"{origin}: entry 'state_dict' is not a dict of tensors")
    return dict(payload)


def ir_from_payload(payload: Mapping[str, Any], origin: str) -> IR:
    """The IR a file holds, checked against the file's own content hash."""
    text = payload["ir_json"]
    where = f"{origin}: ir_json"
    if isinstance(text, str):
        ir = ir_from_json(text, origin=where)
    elif isinstance(text, dict):
        ir = ir_from_dict(text, where)
    else:
        raise UserFileError(f"{where} is a {type(text).__name__}, expected JSON text")
    try:
        check_limits(ir)
    except SizeLimitError as error:
        raise SizeLimitError(f"{where}: {error}") from None
    if ir.content_hash != payload.get("content_hash"):
        raise UserFileError(f"{origin}: content_hash {str(payload.get('content_hash'))[:12]} "
                            f"does not match the IR the file holds ({ir.short_hash})")
    return ir


def file_masks(ir: IR, state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The mask tensors a (stripped) state dict holds, by projection name."""
    masks = {}
    for projection in ir.projections:
        value = state.get(f"{conv_name(projection)}.mask")
        if value is not None and hasattr(value, "shape"):
            masks[projection.name] = as_float32(value)
    return masks
