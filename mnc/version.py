"""The version of mnc, written into every file it saves (models, checkpoints, ONNX metadata).

A leaf module, so that code in any layer can record it without importing the package's
facade (``mnc/__init__.py``), which reaches every layer."""

__version__ = "0.1.0"
