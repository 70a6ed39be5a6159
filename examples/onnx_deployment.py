"""Deployment path end to end: spec -> torch weights -> ONNX -> onnxruntime predictions.

    python examples/onnx_deployment.py                 # tiny variant, a few seconds
    python examples/onnx_deployment.py --spec mouse --benchmark

Steps: compile the spec with the torch backend (here the fresh network stands in for a trained
one), save its weights, export ONNX with those weights, check that onnxruntime gives the same
logits as torch, classify a few synthetic photos, and optionally time both runtimes on the CPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import mnc
from mnc.backend import BackendOptions, get_backend
from mnc_backends.onnx.runtime import open_model, predict, top_k


def throughput(run, batch: int, seconds: float = 2.0) -> float:
    """Images per second of ``run`` at one batch size (after a warm-up call)."""
    run(batch)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or calls < 1:
        run(batch)
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny")
    parser.add_argument("--benchmark", action="store_true", help="time ORT (CPU) and torch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mnc-onnx-") as temporary:
        deploy(args.spec, Path(temporary), args.benchmark)


def deploy(spec: str, folder: Path, benchmark: bool) -> None:
    ir = mnc.compile_ir(spec)
    model = mnc.compile(ir, backend="torch").eval()                 # train it in practice
    weights = folder / "trained.pt"
    torch_backend = get_backend("torch")
    torch_backend.save(model, weights, BackendOptions())

    onnx_backend = get_backend("onnx")
    options = BackendOptions(weights=weights, outputs=("VISp5",))
    exported = onnx_backend.compile(ir, options)
    onnx_path = folder / "mousenet.onnx"
    onnx_backend.save(exported, onnx_path, options)
    print(f"{onnx_path}: {onnx_backend.describe(exported)}")

    deployed = open_model(onnx_path, device="cpu")
    images = torch.randn(7, ir.input.channels, ir.input.height, ir.input.width)
    with torch.no_grad():
        expected = model(images).numpy()
    (got,) = deployed.session.run(["logits"], {"image": images.numpy()})
    print(f"max |onnxruntime - torch| over the logits: {np.abs(got - expected).max():.2e}")

    photos = folder / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(3):
        pixels = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"photo{index}.png")
    result = predict(deployed, sorted(photos.iterdir()), ["VISp5"], progress=False)
    indices, probabilities = top_k(result.logits, 3)
    for path, row, chances in zip(result.files, indices, probabilities, strict=True):
        print(f"{path.name}: " + ", ".join(f"{i} {p:.3f}" for i, p in zip(row, chances,
                                                                             strict=True)))

    if benchmark:
        def run_torch(batch: int) -> None:
            with torch.inference_mode():
                model(torch.zeros(batch, ir.input.channels, ir.input.height, ir.input.width))

        def run_onnx(batch: int) -> None:
            deployed.session.run(["logits"], {"image": np.zeros(
                (batch, ir.input.channels, ir.input.height, ir.input.width), np.float32)})

        print(f"CPU threads: torch {torch.get_num_threads()}; file size "
              f"{onnx_path.stat().st_size / 1e6:.1f} MB")
        print("| batch | onnxruntime CPU (img/s) | torch CPU (img/s) |")
        print("|---|---|---|")
        for batch in (1, 64):
            print(f"| {batch} | {throughput(run_onnx, batch):.1f} | "
                  f"{throughput(run_torch, batch):.1f} |")


if __name__ == "__main__":
    main()
