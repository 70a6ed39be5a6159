"""Small networks, random weights and an independent reference forward for ONNX tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mnc.ir.model import IR
from mnc.masks import projection_mask
from tests.conftest import DEFAULT_SPEC

# The default graph at 32x32 with about 1/8 of the neurons: every area, layer and projection,
# small enough for tests that run in a fraction of a second.
SMALL_SPEC = {
    "extends": str(DEFAULT_SPEC),
    "name": "SmallMouseNet",
    "input": {"height_px": 32, "width_px": 32},
    "neurons": {"counts": {
        "LGNd": 2650,
        "VISp": {"4": 13578, "2/3": 21657, "5": 16816},
        "VISl": {"4": 1938, "2/3": 2787, "5": 2603},
        "VISrl": {"4": 1795, "2/3": 2825, "5": 2397},
        "VISli": {"4": 703, "2/3": 1198, "5": 1451},
        "VISpl": {"4": 489, "2/3": 2241, "5": 2505},
        "VISal": {"4": 1213, "2/3": 1970, "5": 1992},
        "VISpor": {"4": 744, "2/3": 3822, "5": 3779},
    }},
    "readout": {"classes": 10},
}


def write_small_spec(folder: Path, name: str = "small.yaml", **overrides: Any) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({**SMALL_SPEC, **overrides}, sort_keys=False))
    return path


def random_state(ir: IR, seed: int = 1) -> dict[str, np.ndarray]:
    """Every tensor of the weights contract, random, BatchNorm statistics included (so that
    folding them into the convolutions is really exercised)."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for projection in ir.projections:
        key = f"convs.{projection.source.replace('/', '_')}__{projection.target.replace('/', '_')}"
        shape = (projection.out_channels, projection.in_channels, projection.kernel_size,
                 projection.kernel_size)
        bound = 1.0 / np.sqrt(projection.in_channels * projection.kernel_size ** 2 * 0.05)
        state[f"{key}.weight"] = rng.uniform(-bound, bound, shape).astype(np.float32)
        state[f"{key}.bias"] = rng.uniform(-0.1, 0.1, shape[0]).astype(np.float32)
        state[f"{key}.mask"] = projection_mask(ir, projection)
    for population in ir.populations[1:]:
        key = f"norms.{population.name.replace('/', '_')}"
        channels = population.channels
        state[f"{key}.weight"] = rng.uniform(0.5, 1.5, channels).astype(np.float32)
        state[f"{key}.bias"] = rng.uniform(-0.2, 0.2, channels).astype(np.float32)
        state[f"{key}.running_mean"] = rng.uniform(-0.3, 0.3, channels).astype(np.float32)
        state[f"{key}.running_var"] = rng.uniform(0.3, 2.0, channels).astype(np.float32)
        state[f"{key}.num_batches_tracked"] = np.array(7, dtype=np.int64)
    bound = 1.0 / np.sqrt(ir.readout.features)
    state["classifier.weight"] = rng.uniform(-bound, bound, (ir.readout.classes,
                                                             ir.readout.features)).astype(
                                                                 np.float32)
    state["classifier.bias"] = rng.uniform(-bound, bound, ir.readout.classes).astype(np.float32)
    return state


def reference_forward(ir: IR, state: dict[str, np.ndarray], images: np.ndarray,
                      eps: float = 1e-5) -> dict[str, np.ndarray]:
    """Logits and every population, computed the plain way with torch.nn.functional: explicit
    padding, masked weights, unfolded BatchNorm, adaptive pooling. Independent of the backend.

    A recurrent IR runs step after step: a delay-d input reads its source d steps back and
    adds nothing before step d (a population without inputs yet has a drive of zeros), an
    upsampled one repeats the source's pixels, a clip shows frame t at step t; populations
    come out as (N, T, C, H, W) and the logits classify the pooled features averaged over
    the readout steps."""
    import torch
    import torch.nn.functional as F

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(state[name], dtype=np.float64))

    def key(source: str, target: str) -> str:
        return f"{source.replace('/', '_')}__{target.replace('/', '_')}"

    frames = torch.from_numpy(images.astype(np.float64))
    history: list[dict[str, torch.Tensor]] = []
    for step in range(ir.dynamics.steps):
        image = frames[:, step] if ir.dynamics.input == "clip" else frames
        activity = {ir.populations[0].name: image}
        for population in ir.populations[1:]:
            total = torch.zeros(image.shape[0], population.channels, population.height,
                                population.width, dtype=torch.float64)
            for projection in ir.projections:
                if projection.target != population.name or step < projection.delay:
                    continue
                source = (history[step - projection.delay] if projection.delay
                          else activity)[projection.source]
                source = source.repeat_interleave(projection.upsample, 2).repeat_interleave(
                    projection.upsample, 3)
                name = f"convs.{key(projection.source, projection.target)}"
                total = total + F.conv2d(F.pad(source, projection.padding_lrtb),
                                         tensor(f"{name}.weight") * tensor(f"{name}.mask"),
                                         tensor(f"{name}.bias"), stride=projection.stride)
            norm = f"norms.{population.name.replace('/', '_')}"
            activity[population.name] = F.relu(F.batch_norm(
                total, tensor(f"{norm}.running_mean"), tensor(f"{norm}.running_var"),
                tensor(f"{norm}.weight"), tensor(f"{norm}.bias"), training=False, eps=eps))
        history.append(activity)
    readout = list(ir.dynamics.readout_range)
    pooled = sum(torch.cat([F.adaptive_avg_pool2d(history[step][name], ir.readout.pool_size)
                            .flatten(1) for name in ir.readout.populations], 1)
                 for step in readout) / len(readout)
    logits = F.linear(pooled, tensor("classifier.weight"), tensor("classifier.bias"))
    if ir.is_recurrent:
        results = {name: torch.stack([step[name] for step in history], 1).numpy()
                   for name in history[0]}
    else:
        results = {name: value.numpy() for name, value in history[0].items()}
    results["logits"] = logits.numpy()
    return results


def run_onnx(model: Any, images: np.ndarray) -> dict[str, np.ndarray]:
    """All outputs of an ONNX model (ModelProto or path) on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = str(model) if isinstance(model, str | Path) else model.SerializeToString()
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    names = [value.name for value in session.get_outputs()]
    return dict(zip(names, session.run(names, {"image": images}), strict=True))
