"""ONNX backend of mnc: the graph is built from the IR (no tracing), with masks and inference
BatchNorm folded into the convolutions; ``runtime`` runs the result with onnxruntime."""

from .backend import OnnxBackend

__all__ = ["OnnxBackend"]
