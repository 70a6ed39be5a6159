"""Run an exported model with onnxruntime: open it safely, batch images, collect outputs.

This is the Python API behind ``mnc predict``. The model file is read and checked with onnx
before a session is created, so a broken file is reported by name instead of as a runtime
crash; CUDA is used when onnxruntime can actually start it, else the CPU.
"""

from __future__ import annotations

import ctypes
import functools
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError

from mnc.analysis.limits import memory_problem, work_problem
from mnc.errors import SizeLimitError, UserFileError
from mnc.imaging import (
    EVAL_CROP_FRACTION,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Preprocessing,
    load_image,
    resized_size,
)
from mnc.io.textfile import TextFileError, parse_json
from mnc.text import unsafe_character
from mnc_backends.onnx.work import graph_macs

from .external_data import load_bounded
from .graph import INPUT_NAME, LOGITS_NAME

Device = Literal["auto", "cpu", "cuda"]
PREFERRED_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")
LARGEST_INPUT_SIDE = 8192
"""The largest input height or width a spec may declare (``mnc.spec.models``)."""


def read_model(path: str | Path) -> onnx.ModelProto:
    """Load and fully check an ONNX file; UserFileError naming the file if it is not usable."""
    path = Path(path)
    if not path.is_file():
        raise UserFileError(f"{path}: no such model file")
    model = load_bounded(path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (DecodeError, onnx.checker.ValidationError, onnx.shape_inference.InferenceError,
            OSError, ValueError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserFileError(f"{path}: not a readable ONNX model ({reason})") from None
    if not model.graph.node:
        raise UserFileError(f"{path}: not a readable ONNX model (the graph is empty)")
    return model


def providers_for(device: Device) -> list[str]:
    """Execution providers to ask for, filtered by what this onnxruntime build offers."""
    available = set(ort.get_available_providers())
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise UserFileError("--device cuda: this onnxruntime has no CUDAExecutionProvider "
                                "(install onnxruntime-gpu)")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return [name for name in PREFERRED_PROVIDERS if name in available
            and (name != "CUDAExecutionProvider" or cuda_provider_loads())]


@functools.cache
def cuda_provider_loads() -> bool:
    """Whether onnxruntime's CUDA provider library and the CUDA driver load in this process.

    Asked for CUDA where they do not, onnxruntime logs an error through its process-wide
    default logger, which only a process-wide setting (the caller's) could quiet; so ``auto``
    checks first and asks for the CPU alone. Off Linux, onnxruntime is asked and falls back.
    """
    if not sys.platform.startswith("linux"):
        return True
    provider = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    try:
        ctypes.CDLL("libcuda.so.1")
        ctypes.CDLL(str(provider))
    except OSError:
        return False
    return True


@dataclass
class DeployedModel:
    """An onnxruntime session plus what mnc recorded about the model."""

    path: Path
    session: ort.InferenceSession
    metadata: dict[str, str]
    preprocessing: Preprocessing
    outputs: list[str]
    class_names: list[str] | None = None

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]


def open_model(path: str | Path, device: Device = "auto", threads: int = 0) -> DeployedModel:
    """Check the file, create a session (CUDA if it starts, else CPU) and read the metadata."""
    path = Path(path)
    model = read_model(path)
    problem = work_problem("the model", graph_macs(model))
    if problem is not None:  # before a session: a model of 1000 steps runs for minutes
        raise SizeLimitError(f"{path}: {problem}")
    session = _session(path, model, device, threads)
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    shape = _image_shape(path, session)
    stored = _json(path, metadata, "mnc.preprocessing", {})
    if not isinstance(stored, dict):
        raise _metadata_error(path, "mnc.preprocessing", "expected a JSON object", stored)
    preprocessing = Preprocessing(
        height=shape[2], width=shape[3], channels=shape[1],
        crop_fraction=_fraction(path, stored.get("crop_fraction", EVAL_CROP_FRACTION)),
        mean=_triple(path, "mean", stored.get("mean", IMAGENET_MEAN), positive=False),
        std=_triple(path, "std", stored.get("std", IMAGENET_STD), positive=True))
    class_names = _class_names(path, _json(path, metadata, "mnc.class_names", None))
    return DeployedModel(path, session, metadata, preprocessing,
                         [value.name for value in session.get_outputs()], class_names)


def _session(path: Path, model: onnx.ModelProto, device: Device, threads: int
             ) -> ort.InferenceSession:
    """An onnxruntime session on ``device``'s providers; UserFileError if it cannot start."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    providers = providers_for(device)
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=providers)
    except Exception as error:  # onnxruntime raises its own unexported exception types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserFileError(f"{path}: onnxruntime cannot run this model ({reason})") from None
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise UserFileError("--device cuda: onnxruntime could not start CUDA on this machine")
    return session


def _image_shape(path: Path, session: ort.InferenceSession) -> list[Any]:
    """The shape of the model's image input (batch, channels, height, width), checked to be
    one mnc exports for ``mnc predict``."""
    inputs = {value.name: value for value in session.get_inputs()}
    if INPUT_NAME not in inputs:
        raise UserFileError(f"{path}: the model has no input named {INPUT_NAME!r} (inputs: "
                            f"{', '.join(inputs)}); was it exported by mnc?")
    shape = inputs[INPUT_NAME].shape
    if len(shape) == 5:
        raise UserFileError(f"{path}: the model takes clips ({INPUT_NAME!r} has shape {shape}: "
                            f"batch, steps, channels, height, width); mnc predict shows one "
                            f"image at a time, run clips with onnxruntime directly")
    if len(shape) != 4 or not all(isinstance(size, int) for size in shape[1:]):
        raise UserFileError(f"{path}: input {INPUT_NAME!r} has shape {shape}, expected "
                            f"(batch, channels, height, width) with fixed channels and size")
    if shape[1] not in (1, 3) or not all(1 <= side <= LARGEST_INPUT_SIDE for side in shape[2:]):
        raise UserFileError(f"{path}: input {INPUT_NAME!r} declares {shape[1]} channels of "
                            f"{shape[2]}x{shape[3]} pixels; mnc exports 1 or 3 channels of at "
                            f"most {LARGEST_INPUT_SIDE}x{LARGEST_INPUT_SIDE}")
    return shape


def _json(path: Path, metadata: dict[str, str], key: str, default: Any) -> Any:
    """A JSON value mnc stored in the model's metadata; UserFileError naming key if broken."""
    text = metadata.get(key)
    if not text:
        return default
    try:
        return parse_json(text, f"{path}: metadata {key}", "JSON value written by mnc compile")
    except TextFileError as error:
        raise UserFileError(str(error)) from None


def _metadata_error(path: Path, key: str, expected: str, value: Any) -> UserFileError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return UserFileError(f"{path}: metadata {key}: {expected}, got {shown}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


def _fraction(path: Path, value: Any) -> float:
    if not _number(value) or not 0 < value <= 1:
        raise _metadata_error(path, "mnc.preprocessing", "crop_fraction: expected a number in "
                              "(0, 1]", value)
    return float(value)


def _triple(path: Path, name: str, value: Any, positive: bool) -> tuple[float, ...]:
    if not isinstance(value, list | tuple) or len(value) != 3 or not all(
            _number(item) and (item > 0 or not positive) for item in value):
        kind = "positive numbers" if positive else "numbers"
        raise _metadata_error(path, "mnc.preprocessing", f"{name}: expected three {kind}",
                              value)
    return tuple(float(item) for item in value)


def _class_names(path: Path, value: Any) -> list[str] | None:
    """Class names are printed on terminals: text without control or direction characters."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise _metadata_error(path, "mnc.class_names", "expected a JSON list of names", value)
    for name in value:
        if unsafe_character(name) is not None:
            raise _metadata_error(path, "mnc.class_names", "expected printable names (no "
                                  "control or bidirectional characters)", name)
    return value


@dataclass
class Predictions:
    files: list[Path]
    """Images that were read, in the order of the rows below."""
    logits: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Images that could not be read, with the reason."""


def check_features(model: DeployedModel, features: Sequence[str]) -> None:
    missing = [name for name in features if name not in model.outputs]
    if missing:
        available = [name for name in model.outputs if name != LOGITS_NAME]
        have = ", ".join(available) if available else "none besides logits"
        raise UserFileError(f"{model.path}: the model has no output {missing[0]!r} (population "
                            f"outputs: {have}); export it with `mnc compile SPEC --backend onnx "
                            f"--outputs logits,{missing[0]}`")


def predict(model: DeployedModel, files: Sequence[Path], features: Sequence[str] = (),
            batch_size: int = 32, progress: bool | None = None,
            on_skip: Callable[[Path, str], None] | None = None) -> Predictions:
    """Run the model over image files in batches; unreadable images are skipped and reported.

    ``progress``: show a bar (``None``: on a terminal or in a notebook)."""
    from mnc import progress as bars

    check_features(model, features)
    if not files:
        raise UserFileError("no images to predict (folders are searched for .png, .jpg and "
                            ".jpeg files)")
    if batch_size < 1:
        raise UserFileError(f"batch size must be at least 1, not {batch_size}")
    problem = memory_problem(f"preparing batches of {batch_size} image(s)",
                             input_bytes(model.preprocessing, batch_size))
    if problem is not None:
        shape = model.preprocessing
        raise SizeLimitError(f"{model.path}: input {shape.channels}x{shape.height}x"
                             f"{shape.width}: {problem}; or lower --batch-size")
    wanted = [LOGITS_NAME, *features]
    results: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    read: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    bar = bars.bar(total=len(files), unit="image", desc="predict", show=progress)
    with bar:
        for start in range(0, len(files), batch_size):
            arrays, names = [], []
            for path in files[start:start + batch_size]:
                try:
                    arrays.append(load_image(path, model.preprocessing))
                    names.append(path)
                except UserFileError as error:
                    skipped.append((path, str(error)))
                    if on_skip is not None:
                        on_skip(path, str(error))
            if arrays:
                outputs = _run(model, wanted, np.stack(arrays))
                for name, value in zip(wanted, outputs, strict=True):
                    results[name].append(value)
                read.extend(names)
            bar.update(len(files[start:start + batch_size]))
    if not read:
        raise UserFileError(f"none of the {len(files)} image(s) could be read"
                            + (f" (first: {skipped[0][1]})" if skipped else ""))
    stacked = {name: np.concatenate(values) for name, values in results.items()}
    logits = stacked.pop(LOGITS_NAME)
    return Predictions(read, logits, stacked, skipped)


def _run(model: DeployedModel, wanted: list[str], batch: np.ndarray) -> list[np.ndarray]:
    try:
        return model.session.run(wanted, {INPUT_NAME: batch})
    except Exception as error:  # onnxruntime raises its own unexported exception types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserFileError(f"{model.path}: onnxruntime failed while running the model "
                            f"({reason[:300]})") from None


def input_bytes(preprocessing: Preprocessing, batch_size: int) -> int:
    """Bytes the arrays of one batch take before the model runs: each image resized (8-bit,
    then float32 twice while normalised) and the float32 batch itself."""
    image = preprocessing.channels * preprocessing.height * preprocessing.width
    width, height = resized_size((preprocessing.width, preprocessing.height), preprocessing)
    resized = preprocessing.channels * width * height
    return batch_size * 8 * image + 9 * resized


def top_k(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, probabilities) of the k most likely classes per row, most likely first."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    k = max(1, min(k, logits.shape[1]))
    indices = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return indices, np.take_along_axis(probabilities, indices, axis=1)
