"""The ``onnx`` backend: resolved IR (+ optional weights file) -> ONNX model file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import onnx
from pydantic import BaseModel

from mnc.analysis.limits import check_memory
from mnc.backend import Backend, BackendOptions, read_options
from mnc.class_names import default_class_names
from mnc.errors import BackendError
from mnc.io.atomic import write_bytes_atomic
from mnc.ir.model import IR

from .graph import INPUT_NAME, build_model
from .options import OnnxOptions
from .parameters import check_parameters, fresh_parameters, load_parameters_and_names


class OnnxBackend(Backend):
    """Builds the ONNX graph from the IR itself: masks and inference BatchNorm folded into the
    (merged) convolution weights, dynamic batch, input ``image``, outputs ``logits`` plus any
    requested populations (named by population); recurrent IRs unrolled in time."""

    name: ClassVar[str] = "onnx"
    description: ClassVar[str] = "ONNX model (opset 17+) for onnxruntime and other runtimes"
    suffix: ClassVar[str] = ".onnx"
    options_model: ClassVar[type[BaseModel]] = OnnxOptions

    def compile(self, ir: IR, options: BackendOptions) -> onnx.ModelProto:
        settings = read_options(OnnxOptions, options, self.name)
        if options.emit is not None:
            raise BackendError(f"the onnx backend emits only ONNX models, not {options.emit!r}")
        check_memory(ir, "export")  # folding and merged kernel boxes, before any is allocated
        state = settings.state_dict
        if options.weights is not None and state is not None:
            raise BackendError("give either a weights file or a state_dict, not both")
        recorded_names = None
        if options.weights is not None:
            parameters, recorded_names = load_parameters_and_names(ir, Path(options.weights))
            weights = f"file {Path(options.weights).name} (sha256 {_digest(options.weights)})"
        elif state is not None:
            parameters = check_parameters(ir, state, "state_dict")
            weights = "state_dict given in memory"
        else:
            parameters = fresh_parameters(ir)
            weights = f"fresh, drawn from seed {ir.mask.seed} (untrained)"
        metadata = {"mnc.weights": weights}
        # given, else those the training data had, else ImageNet's for a 1000-class readout
        class_names = settings.class_names or recorded_names or \
            default_class_names(ir.readout.classes)
        if class_names is not None:
            names = [str(name) for name in class_names]
            if len(names) != ir.readout.classes:
                raise BackendError(f"class_names has {len(names)} entries; the network has "
                                   f"{ir.readout.classes} classes")
            metadata["mnc.class_names"] = json.dumps(names)
        return build_model(ir, parameters, options.outputs, opset=settings.opset,
                           float16=settings.fp16, merge=settings.merge_convolutions,
                           metadata=metadata)

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
