"""The eager fast path against the other ways to run a compiled network, in one run.

    python benchmarks/bench_deployment_paths.py [--spec tiny] [--batch 8] [--repeats 5]
                                                [--threads N] [--no-compile] [--no-onnx]

Inference on the CPU (eval mode, ``torch.inference_mode``, float32): the default eager call
(``auto``: the sparse kernel), ``torch.compile(model)`` (which captures the plain graph, one
masked convolution per projection), onnxruntime on the exported model, and onnxruntime on
that model after dynamic int8 quantisation (``onnxruntime.quantization.quantize_dynamic``).
Each candidate is warmed up once (the compile time is reported apart), then all are timed
alternately, so load on a shared machine affects them alike; medians and the ratio to the
eager call are printed, with each candidate's largest logit difference from it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import mnc
from mnc_backends.torch.fast.bench import randomise_statistics
from mnc_backends.torch.weights_io import save_model


def _onnx_runners(model: torch.nn.Module, spec: str, folder: Path
                  ) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    weights = folder / "weights.pt"
    save_model(model, weights)
    exported = folder / "model.onnx"
    onnx_model = mnc.compile(spec, backend="onnx", weights=weights)
    exported.write_bytes(onnx_model.SerializeToString())
    quantised = folder / "model.int8.onnx"
    quantize_dynamic(str(exported), str(quantised), weight_type=QuantType.QInt8)
    runners = {}
    for name, path in (("onnxruntime", exported), ("onnxruntime int8", quantised)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        runners[name] = (lambda images, session=session, input_name=input_name:
                         session.run(None, {input_name: images})[0])
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-onnx", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = mnc.compile(args.spec, backend="torch")
    randomise_statistics(model, seed=3)
    model.eval()
    shape = model.ir.input
    images = torch.randn(args.batch, shape.channels, shape.height, shape.width,
                         generator=torch.Generator().manual_seed(0))
    array = images.numpy()

    with torch.inference_mode():
        expected = model(images)
    candidates: dict[str, Callable[[], torch.Tensor | np.ndarray]] = {
        "eager (auto)": lambda: model(images)}
    notes = []
    if not args.no_compile:
        compiled = torch.compile(model)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(images)
        notes.append(f"torch.compile: first call (compiling) {time.perf_counter() - start:.1f} s")
        candidates["torch.compile"] = lambda: compiled(images)
    folder = tempfile.TemporaryDirectory()
    if not args.no_onnx:
        for name, run in _onnx_runners(model, args.spec, Path(folder.name)).items():
            candidates[name] = lambda run=run: run(array)
    times: dict[str, list[float]] = {name: [] for name in candidates}
    differences = {}
    with torch.inference_mode():
        for name, call in candidates.items():
            got = call()  # warm-up
            differences[name] = float(np.abs(np.asarray(got) - expected.numpy()).max())
        for _ in range(args.repeats):
            for name, call in candidates.items():
                start = time.perf_counter()
                call()
                times[name].append((time.perf_counter() - start) * 1000)
    base = statistics.median(times["eager (auto)"])
    print(f"{model.ir.name}: batch {args.batch}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; logits up to {float(expected.abs().max()):.3g}")
    for note in notes:
        print(f"  {note}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:18s} {median:9.1f} ms  {median / base:7.2f}x the eager time   "
              f"max abs logit diff {differences[name]:.2e}")
    folder.cleanup()


if __name__ == "__main__":
    main()
