"""The network's tensors as numpy arrays, under the names every mnc backend shares.

Names (see the torch contract): ``convs.<src>__<dst>.{weight,bias,mask}``,
``norms.<population>.{weight,bias,running_mean,running_var}``, ``classifier.{weight,bias}``,
where a population name has "/" replaced by "_". They come either fresh from the IR's seed or
from a weights file written by the torch backend or by training, checked tensor by tensor
against the IR.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import BackendError, UserFileError
from mnc.ir.model import IR
from mnc.masks import check_file_masks, projection_mask

SAVED_MODEL_FORMAT = "mnc.torch-model"
CHECKPOINT_FORMAT = "mnc.torch-checkpoint"
FORMAT_VERSION = 1
WRAPPER_PREFIXES = ("_orig_mod.", "module.")

Parameters = dict[str, np.ndarray]


def safe_name(population: str) -> str:
    return population.replace("/", "_")


def projection_key(source: str, target: str) -> str:
    return f"convs.{safe_name(source)}__{safe_name(target)}"


def norm_key(population: str) -> str:
    return f"norms.{safe_name(population)}"


def expected_shapes(ir: IR) -> dict[str, tuple[int, ...]]:
    """Every tensor the graph needs, in a fixed order (projections, norms, classifier)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for projection in ir.projections:
        key = projection_key(projection.source, projection.target)
        kernel = (projection.out_channels, projection.in_channels,
                  projection.kernel_size, projection.kernel_size)
        shapes[f"{key}.weight"] = kernel
        shapes[f"{key}.bias"] = (projection.out_channels,)
        shapes[f"{key}.mask"] = kernel
    for population in normalised_populations(ir):
        key = norm_key(population.name)
        for field in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{key}.{field}"] = (population.channels,)
    shapes["classifier.weight"] = (ir.readout.classes, ir.readout.features)
    shapes["classifier.bias"] = (ir.readout.classes,)
    return shapes


def normalised_populations(ir: IR) -> Iterator[Any]:
    """Populations with BatchNorm and ReLU: all but those without incoming projections."""
    targets = {projection.target for projection in ir.projections}
    return (population for population in ir.populations if population.name in targets)


def _stream(seed: int, name: str) -> np.random.Generator:
    # A stream of its own per tensor (salted apart from the mask streams of mnc.masks).
    sequence = np.random.SeedSequence([seed, zlib.crc32(name.encode()), 0x0_4E_58])
    return np.random.Generator(np.random.PCG64(sequence))


def fresh_parameters(ir: IR) -> Parameters:
    """Deterministic initial tensors from the IR's seed.

    Same distribution as torch's Conv2d/Linear defaults (kaiming-uniform with a = sqrt(5)):
    weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BatchNorm at identity
    (gamma 1, beta 0, running mean 0, running variance 1). Masks come from mnc.masks.
    """
    seed = ir.mask.seed
    parameters: Parameters = {}
    for projection in ir.projections:
        key = projection_key(projection.source, projection.target)
        fan_in = projection.in_channels * projection.kernel_size ** 2
        bound = 1.0 / np.sqrt(fan_in)
        shape = (projection.out_channels, projection.in_channels,
                 projection.kernel_size, projection.kernel_size)
        parameters[f"{key}.weight"] = _uniform(seed, f"{key}.weight", shape, bound)
        parameters[f"{key}.bias"] = _uniform(seed, f"{key}.bias", shape[:1], bound)
        parameters[f"{key}.mask"] = projection_mask(ir, projection)
    for population in normalised_populations(ir):
        key = norm_key(population.name)
        channels = population.channels
        parameters[f"{key}.weight"] = np.ones(channels, dtype=np.float32)
        parameters[f"{key}.bias"] = np.zeros(channels, dtype=np.float32)
        parameters[f"{key}.running_mean"] = np.zeros(channels, dtype=np.float32)
        parameters[f"{key}.running_var"] = np.ones(channels, dtype=np.float32)
    bound = 1.0 / np.sqrt(ir.readout.features)
    parameters["classifier.weight"] = _uniform(
        seed, "classifier.weight", (ir.readout.classes, ir.readout.features), bound)
    parameters["classifier.bias"] = _uniform(seed, "classifier.bias", (ir.readout.classes,),
                                             bound)
    return parameters


def _uniform(seed: int, name: str, shape: tuple[int, ...], bound: float) -> np.ndarray:
    return _stream(seed, name).uniform(-bound, bound, size=shape).astype(np.float32)


def read_weights_file(path: Path) -> tuple[dict[str, Any], str | None]:
    """(state_dict, content_hash or None) from a saved model, a checkpoint or a bare state dict.

    Read with ``torch.load(weights_only=True)``: a weights file never runs code.
    """
    import torch

    from mnc_backends.torch.safe_load import load_tensors

    if not path.is_file():
        raise UserFileError(f"{path}: no such weights file")
    data = load_tensors(path, "weights file")
    if not isinstance(data, Mapping):
        raise UserFileError(f"{path}: expected an mnc saved model or checkpoint (a dict), "
                            f"found {type(data).__name__}")
    if "format" in data:
        if data["format"] not in (SAVED_MODEL_FORMAT, CHECKPOINT_FORMAT):
            raise UserFileError(f"{path}: format {data['format']!r} is not "
                                f"{SAVED_MODEL_FORMAT!r} or {CHECKPOINT_FORMAT!r}")
        if data.get("format_version") != FORMAT_VERSION:
            raise UserFileError(f"{path}: format_version {data.get('format_version')!r} is not "
                                f"supported (this mnc reads version {FORMAT_VERSION})")
        state = data.get("state_dict")
        if not isinstance(state, Mapping):
            raise UserFileError(f"{path}: 'state_dict' is missing or not a dict")
        content_hash = data.get("content_hash")
        return dict(state), str(content_hash) if content_hash is not None else None
    if data and all(isinstance(value, torch.Tensor) for value in data.values()):
        return dict(data), None
    raise UserFileError(f"{path}: not an mnc saved model, checkpoint or state dict "
                        f"(keys: {', '.join(map(str, list(data)[:6]))})")


def to_numpy(value: Any) -> np.ndarray:
    """A torch tensor or array-like -> float32 numpy array."""
    if hasattr(value, "detach"):
        value = value.detach().to("cpu")
        if value.is_floating_point() and value.dtype != _torch_float32():
            value = value.float()
        value = value.numpy()
    return np.asarray(value, dtype=np.float32)


def _torch_float32() -> Any:
    import torch

    return torch.float32


def check_parameters(ir: IR, state: Mapping[str, Any], origin: str,
                     content_hash: str | None = None) -> Parameters:
    """Validate a state dict against the IR and return the tensors the graph needs.

    Mask buffers are optional (drawn with mnc.masks when absent); extra entries of a
    known module (e.g. ``num_batches_tracked``, learnable-mask parameters) are ignored; a
    tensor for a module the spec does not have is an error.
    """
    shapes = expected_shapes(ir)
    state = _strip_wrappers(state)
    hash_differs = content_hash is not None and content_hash != ir.content_hash
    hash_note = (f" (saved for a network with content hash {content_hash[:12]}, the spec's is "
                 f"{ir.short_hash})" if hash_differs and content_hash else "")
    parameters: Parameters = {}
    for name, shape in shapes.items():
        if name not in state:
            if name.endswith(".mask"):
                continue
            raise BackendError(f"{origin}: weights do not match the spec{hash_note}: no tensor "
                               f"{name!r} (the spec needs shape {_shape(shape)})")
        value = state[name]
        found = tuple(int(size) for size in getattr(value, "shape", np.shape(value)))
        if found != shape:
            raise BackendError(f"{origin}: weights do not match the spec{hash_note}: tensor "
                               f"{name!r} has shape {_shape(found)} in the file, the spec needs "
                               f"{_shape(shape)}")
        parameters[name] = to_numpy(value)
    modules = {name.rsplit(".", 1)[0] for name in shapes}
    for name in state:
        if not _belongs_to(str(name), modules):
            raise BackendError(f"{origin}: weights do not match the spec{hash_note}: tensor "
                               f"{name!r} has no place in the spec's network")
    if hash_differs:
        raise BackendError(f"{origin}: weights were saved for a different network: content hash "
                           f"{content_hash} in the file, {ir.content_hash} for the spec (every "
                           f"tensor shape matches, so masks or profiles differ)")
    check_file_masks(ir, {q.name: parameters[f"{projection_key(q.source, q.target)}.mask"]
                          for q in ir.projections
                          if f"{projection_key(q.source, q.target)}.mask" in parameters},
                     origin)
    for projection in ir.projections:
        key = projection_key(projection.source, projection.target)
        if f"{key}.log_peak" in state and f"{key}.log_sigma" in state:
            parameters[f"{key}.mask"] = learned_mask(
                projection.kernel_size, float(to_numpy(state[f"{key}.log_peak"])),
                float(to_numpy(state[f"{key}.log_sigma"])), shapes[f"{key}.mask"])
        elif f"{key}.mask" not in parameters:
            parameters[f"{key}.mask"] = projection_mask(ir, projection)
    return parameters


def learned_mask(kernel_size: int, log_peak: float, log_sigma: float,
                 shape: tuple[int, ...]) -> np.ndarray:
    """Effective mask of a learnable-mask conv (torch backend's ``log_peak``, ``log_sigma``):
    min(1, exp(log_peak) * exp(-r^2 / (2 exp(log_sigma)^2))) at every tap."""
    half = kernel_size // 2
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    squared = offsets[:, None] ** 2 + offsets[None, :] ** 2
    profile = np.exp(log_peak - squared / (2 * np.exp(2 * log_sigma)))
    return np.broadcast_to(np.minimum(profile, 1.0), shape).astype(np.float32)


def _strip_wrappers(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the name prefixes torch.compile and DistributedDataParallel add."""
    stripped = {}
    for name, value in state.items():
        name = str(name)
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
        stripped[name] = value
    return stripped


def _belongs_to(name: str, modules: set[str]) -> bool:
    """Whether a tensor sits under a module of the spec (extras such as
    ``num_batches_tracked`` or learnable-mask parameters included)."""
    return any(name.startswith(f"{module}.") for module in modules)


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def load_parameters(ir: IR, path: Path) -> Parameters:
    state, content_hash = read_weights_file(path)
    return check_parameters(ir, state, str(path), content_hash)
