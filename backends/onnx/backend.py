"""The ``onnx`` backend: resolved IR (+ optional weights file) -> ONNX model file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import onnx

from mnc.analysis.limits import check_memory
from mnc.backend import Backend, BackendOptions
from mnc.errors import BackendError
from mnc.io.atomic import write_bytes_atomic
from mnc.ir.model import IR

from .graph import DEFAULT_OPSET, INPUT_NAME, build_model
from .parameters import check_parameters, fresh_parameters, load_parameters

EXTRA_OPTIONS = {
    "opset": "ONNX opset to emit (17 or newer; default 17)",
    "fp16": "store weights and compute in float16; input and outputs stay float32",
    "class_names": "list of class names, stored in the model metadata for `mnc predict`",
    "state_dict": "mapping of tensor names to arrays/tensors, instead of a weights file",
    "merge_convolutions": "one Conv per (source, stride) instead of one per projection "
                          "(default: on for float32, about 2x faster in onnxruntime's CPU "
                          "provider; False keeps one Conv per projection)",
}


class OnnxBackend(Backend):
    """Builds the ONNX graph from the IR itself: masks and inference BatchNorm folded into the
    convolution weights, dynamic batch, input ``image``, outputs ``logits`` plus any requested
    populations (named by population)."""

    name: ClassVar[str] = "onnx"
    description: ClassVar[str] = "ONNX model (opset 17+) for onnxruntime and other runtimes"
    suffix: ClassVar[str] = ".onnx"

    def compile(self, ir: IR, options: BackendOptions) -> onnx.ModelProto:
        extra = dict(options.extra)
        unknown = sorted(set(extra) - set(EXTRA_OPTIONS))
        if unknown:
            known = "; ".join(f"{key}: {text}" for key, text in EXTRA_OPTIONS.items())
            raise BackendError(f"the onnx backend has no option {unknown[0]!r} (options: {known})")
        if options.emit is not None:
            raise BackendError(f"the onnx backend emits only ONNX models, not {options.emit!r}")
        check_memory(ir, "export")  # folding and merged kernel boxes, before any is allocated
        state = extra.get("state_dict")
        if options.weights is not None and state is not None:
            raise BackendError("give either a weights file or a state_dict, not both")
        if options.weights is not None:
            parameters = load_parameters(ir, Path(options.weights))
            weights = f"file {Path(options.weights).name} (sha256 {_digest(options.weights)})"
        elif state is not None:
            if not isinstance(state, Mapping):
                raise BackendError("state_dict must map tensor names to arrays")
            parameters = check_parameters(ir, state, "state_dict")
            weights = "state_dict given in memory"
        else:
            parameters = fresh_parameters(ir)
            weights = f"fresh, drawn from seed {ir.mask.seed} (untrained)"
        metadata = {"mnc.weights": weights}
        class_names = extra.get("class_names")
        if class_names is not None:
            names = [str(name) for name in class_names]
            if len(names) != ir.readout.classes:
                raise BackendError(f"class_names has {len(names)} entries; the network has "
                                   f"{ir.readout.classes} classes")
            metadata["mnc.class_names"] = json.dumps(names)
        opset = extra.get("opset", DEFAULT_OPSET)
        if not isinstance(opset, int) or isinstance(opset, bool):
            raise BackendError(f"opset must be an integer, not {opset!r}")
        float16 = bool(extra.get("fp16", False))
        model = build_model(ir, parameters, options.outputs, opset=opset, float16=float16,
                            metadata=metadata)
        if extra.get("merge_convolutions", not float16):
            if float16:
                raise BackendError("merge_convolutions works on float32 graphs; drop fp16")
            from .merge import merge_convolutions

            model = merge_convolutions(model, ir)
        return model

    def save(self, artifact: onnx.ModelProto, path: Path, options: BackendOptions) -> None:
        write_bytes_atomic(path, artifact.SerializeToString())

    def describe(self, artifact: onnx.ModelProto) -> str:
        graph = artifact.graph
        shape = next(_dims(value) for value in graph.input if value.name == INPUT_NAME)
        outputs = ", ".join(value.name for value in graph.output)
        megabytes = artifact.ByteSize() / 1e6
        return (f"ONNX opset {artifact.opset_import[0].version}, {len(graph.node)} nodes, "
                f"input {INPUT_NAME} {shape}, outputs {outputs}, {megabytes:.1f} MB")


def _dims(value: onnx.ValueInfoProto) -> str:
    dims = value.type.tensor_type.shape.dim
    return "(" + ", ".join(dim.dim_param or str(dim.dim_value) for dim in dims) + ")"


def _digest(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
