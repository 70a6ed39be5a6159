"""The model side of the neural comparison: images in, per-population numpy arrays out.

This is the only module of ``mnc.neuro`` that touches torch (imported inside functions, hence
a per-file lint exception), so everything downstream works on numpy arrays and is testable
with synthetic features.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnc.errors import UsageError, UserFileError
from mnc.imaging import IMAGENET_MEAN, IMAGENET_STD, channel_statistics
from mnc.io.scratch import scratch_array, scratch_folder
from mnc.neuro.representation import FeatureSummary, sample_columns

UNTRAINED = "untrained"


@dataclass(frozen=True)
class Layer:
    """A layer of a model without an IR: it models no particular brain area."""

    name: str
    area: str | None = None
    layer: str | None = None


Preprocessor = Callable[[np.ndarray], np.ndarray]
"""(N, H, W) grey levels 0-255 -> (N, channels, height, width) float32 model input."""


@dataclass(frozen=True)
class Preprocess:
    """Resize, replicate grey to every channel, scale to [0, 1], standardise per channel."""

    height: int = 224
    width: int = 224
    channels: int = 3
    mean: tuple[float, ...] | None = IMAGENET_MEAN
    """Per-channel mean subtracted after scaling to [0, 1]; None: no standardisation."""
    std: tuple[float, ...] | None = IMAGENET_STD

    def __call__(self, images: np.ndarray) -> np.ndarray:
        batch = prepare_images(images, self.height, self.width, self.channels, "none")
        if self.mean is None or self.std is None:
            return batch
        mean, std = channel_statistics(self.channels, self.mean, self.std)
        return ((batch - mean[None, :, None, None]) / std[None, :, None, None]).astype(
            np.float32)


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for feature extraction and the key naming its weights in caches.

    Either a compiled MouseNet (``model.ir`` gives input size, populations and the network
    key) or any module wrapped by ``mnc.neuro.any_model`` (``layer_names``, ``network_key``).
    """

    model: Any
    """Object with ``features(images, populations=None)`` and ``ir`` or ``layer_names``."""
    weights_key: str
    """sha256 of the weights file, ``untrained-seed<N>``, or a hash of the weights."""
    label: str = "MouseNet"
    """Name of the model in tables (the ``model`` column) and figures."""
    preprocess: Preprocessor | None = None
    """Raw images -> model input; None: the IR's input size and ``AnalysisOptions.normalize``."""

    @property
    def ir(self) -> Any:
        return self.model.ir

    @property
    def has_ir(self) -> bool:
        return hasattr(self.model, "ir")

    @property
    def network_key(self) -> str:
        """Names the network (not its weights) in caches: the IR content hash if any."""
        return str(self.model.ir.content_hash if self.has_ir else self.model.network_key)

    @property
    def populations(self) -> list[Any]:
        """Objects with ``name``, ``area`` and ``layer``, in network order."""
        if self.has_ir:
            return list(self.model.ir.populations)
        return [Layer(name) for name in self.model.layer_names]

    def model_input(self, images: np.ndarray, normalize: str) -> np.ndarray:
        if self.preprocess is not None:
            batch = np.asarray(self.preprocess(images), dtype=np.float32)
            if batch.ndim != 4 or batch.shape[0] != images.shape[0]:
                raise UserFileError(f"preprocess returned shape {batch.shape}; expected "
                                    f"({images.shape[0]}, channels, height, width)")
            return batch
        shape = self.ir.input
        return prepare_images(images, shape.height, shape.width, shape.channels, normalize)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(spec: str | Path, weights: str, seed: int = 0) -> LoadedModel:
    """Compile ``spec`` with untrained weights (seeded), or load trained weights for it.

    Trained weights must belong to the network the spec compiles to (same IR content hash).
    """
    from mnc.api import compile as compile_spec
    from mnc.api import load
    from mnc.compiler import compile_ir

    if weights == UNTRAINED:
        # The spec's seed alone draws the untrained weights; torch's global generator is the
        # caller's and stays untouched.
        model = compile_spec(str(spec), backend="torch")
        model.eval()
        return LoadedModel(model=model, weights_key=f"{UNTRAINED}-seed{seed}")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise UserFileError(f"{path}: weights file not found (give a saved model or training "
                            f"checkpoint, or --weights {UNTRAINED})")
    model = load(str(path))
    expected = compile_ir(str(spec)).content_hash
    if model.ir.content_hash != expected:
        raise UserFileError(
            f"{path}: weights belong to a network with IR hash {model.ir.content_hash[:12]}, "
            f"but {spec} compiles to {expected[:12]}; pass the spec the weights were trained on")
    model.eval()
    return LoadedModel(model=model, weights_key=file_sha256(path))


def prepare_images(images: np.ndarray, height: int, width: int, channels: int = 3,
                   normalize: str = "imagenet") -> np.ndarray:
    """(N, H, W) grey levels 0-255 -> (N, channels, height, width) float32 model input.

    The whole frame is resized (area-averaging antialias), replicated to every channel, scaled
    to [0, 1] and, with ``normalize="imagenet"``, standardised with the ImageNet statistics
    the network was trained with.
    """
    import torch  # lazy: the model side needs torch tensors
    import torch.nn.functional as functional

    grey = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)[:, None]
    resized = functional.interpolate(grey, size=(height, width), mode="bilinear",
                                     align_corners=False, antialias=True)
    batch = resized.repeat(1, channels, 1, 1)
    if normalize == "imagenet":
        mean, std = (torch.from_numpy(values).view(1, channels, 1, 1)
                     for values in channel_statistics(channels))
        batch = (batch - mean) / std
    elif normalize != "none":
        raise UserFileError(f"--normalize: expected 'imagenet' or 'none', got {normalize!r}")
    return batch.numpy().astype(np.float32)


StepChoice = int | str
"""Which steps of a recurrent network are compared: a step number (0-based), ``"last"`` or
``"readout"`` (the activity averaged over the steps the network's readout averages; the
last step unless the IR's ``dynamics.readout_steps`` say otherwise)."""
STEP_WORDS = ("readout", "last")


def model_steps(model: Any) -> int:
    """Steps a model runs: its IR's ``dynamics.steps``; 1 for a model without dynamics."""
    dynamics = getattr(getattr(model, "ir", None), "dynamics", None)
    return int(dynamics.steps) if dynamics is not None else 1


def chosen_steps(model: Any, step: StepChoice) -> range:
    """The steps whose activity ``step`` selects (averaged when more than one), or a
    UsageError naming the steps the model has."""
    steps = model_steps(model)
    if step == "last":
        return range(steps - 1, steps)
    if step == "readout":
        dynamics = getattr(getattr(model, "ir", None), "dynamics", None)
        return dynamics.readout_range if dynamics is not None else range(steps - 1, steps)
    if isinstance(step, int) and not isinstance(step, bool) and 0 <= step < steps:
        return range(step, step + 1)
    runs = f"runs {steps} steps (0 to {steps - 1})" if steps > 1 else "runs 1 step (0)"
    raise UsageError(f"--step {step}: the model {runs}; expected a step number in that "
                     f"range, 'last' or 'readout'")


def is_stepped(model: Any) -> bool:
    """Whether ``model.features`` gives per-step activity (N, T, C, H, W): a recurrent IR."""
    return bool(getattr(getattr(model, "ir", None), "is_recurrent", False))


def _at_steps(value: Any, name: str, steps: int, chosen: range) -> Any:
    """(N, T, ...) per-step activity -> (N, ...) at the chosen step or their mean."""
    shape = tuple(value.shape)
    if len(shape) < 3 or shape[1] != steps:
        raise UserFileError(f"population {name!r}: the recurrent model gave activity of shape "
                            f"{shape}; expected (images, {steps} steps, ...)")
    if len(chosen) == 1:
        return value[:, chosen.start]
    return value[:, chosen.start:chosen.stop].mean(1)


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def iter_features(model: Any, images: np.ndarray, batch_size: int,
                  populations: Sequence[str] | None = None, step: StepChoice = "readout"
                  ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield (first image index, {population: (batch, units) float32}) batch by batch.

    A recurrent network's activity is taken at ``step`` (see ``StepChoice``); a network that
    takes clips is shown each image as a still clip (the same frame at every step).
    """
    import torch  # lazy: the model side needs torch tensors

    if batch_size < 1:
        raise UserFileError(f"--batch-size: expected a positive integer, got {batch_size}")
    chosen = chosen_steps(model, step)
    steps = model_steps(model)
    stepped = is_stepped(model)
    clip = stepped and getattr(model.ir.dynamics, "input", "still") == "clip"
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
            shown = batch.unsqueeze(1).repeat(1, steps, 1, 1, 1) if clip else batch
            outputs = model.features(shown, populations=list(populations) if populations
                                     else None)
            if stepped:
                outputs = {name: _at_steps(value, name, steps, chosen)
                           for name, value in outputs.items()}
            yield start, {name: _as_numpy(value).reshape(batch.shape[0], -1)
                          for name, value in outputs.items()}


def extract_features(model: Any, images: np.ndarray, batch_size: int = 32,
                     populations: Sequence[str] | None = None,
                     step: StepChoice = "readout") -> dict[str, np.ndarray]:
    """{population: (images, units)} for small networks; see ``summarize_features`` otherwise."""
    parts: dict[str, list[np.ndarray]] = {}
    for _, outputs in iter_features(model, images, batch_size, populations, step):
        for name, value in outputs.items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def summarize_features(model: Any, images: np.ndarray, batch_size: int = 32,
                       populations: Sequence[str] | None = None, max_units: int = 2000,
                       seed: int = 0, scratch_dir: str | Path | None = None,
                       chunk_bytes: int = 64 << 20,
                       progress: Any = None,
                       step: StepChoice = "readout") -> dict[str, FeatureSummary]:
    """Stream images through the model and summarise every population with bounded memory
    (a recurrent network's activity at ``step``).

    Batches are written to disk-backed arrays (one per population, removed afterwards), then
    the Gram matrix is accumulated over column chunks of at most ``chunk_bytes``. A network
    with an IR is checked first against the memory limit (``feature_path_bytes``).
    """
    check_feature_memory(model, images.shape[0], batch_size)
    with scratch_folder(scratch_dir) as folder:
        stores: dict[str, np.ndarray] = {}
        n = images.shape[0]
        for start, outputs in iter_features(model, images, batch_size, populations, step):
            for name, value in outputs.items():
                if name not in stores:
                    stores[name] = scratch_array(folder, f"{len(stores)}.npy",
                                                 (n, value.shape[1]), np.float32)
                stores[name][start:start + value.shape[0]] = value
            if progress is not None:
                progress(min(start + batch_size, n), n)
        rng = np.random.default_rng(seed)
        summaries = {}
        for name, store in stores.items():
            summaries[name] = _summarize_store(store, max_units, rng, chunk_bytes)
            del store
        stores.clear()
        return summaries


def feature_path_bytes(ir: Any, n_images: int, batch_size: int) -> int:
    """Bytes the comparison's feature path allocates at its peak: running a batch (the run
    estimate, every step's activity of a recurrent network included), the float32 copies of
    every population's activity at every step that ``iter_features`` makes before averaging
    the steps, and a population's N x N Gram matrix with its chunk product."""
    from mnc.analysis.memory import ACTIVATION_BYTES, estimate_memory, network_sizes

    batch = min(batch_size, n_images)
    sizes = network_sizes(ir)
    copies = batch * ACTIVATION_BYTES * sizes.steps * sizes.activity_values
    summaries = 2 * n_images * n_images * 8
    return estimate_memory(ir, "run", batch).total_bytes + copies + summaries


def check_feature_memory(model: Any, n_images: int, batch_size: int) -> None:
    """Refuse before any image runs if the feature path would pass the memory limit."""
    from mnc.analysis.limits import memory_problem
    from mnc.errors import SizeLimitError
    from mnc.ir.model import IR

    ir = getattr(model, "ir", None)
    if not isinstance(ir, IR) or n_images < 1:  # a module without an IR has no estimate
        return

    steps = ir.dynamics.steps
    what = (f"comparing the features of {n_images} image(s) in batches of "
            f"{min(batch_size, n_images)}" + (f" over {steps} steps" if steps > 1 else ""))
    problem = memory_problem(what, feature_path_bytes(ir, n_images, batch_size))
    if problem is not None:
        raise SizeLimitError(problem)


def _summarize_store(store: np.ndarray, max_units: int, rng: np.random.Generator,
                     chunk_bytes: int) -> FeatureSummary:
    n, units = store.shape
    gram = np.zeros((n, n))
    row_sums = np.zeros(n)
    step = max(1, chunk_bytes // (8 * n))
    for first in range(0, units, step):
        chunk = np.asarray(store[:, first:first + step], dtype=np.float64)
        gram += chunk @ chunk.T
        row_sums += chunk.sum(axis=1)
    sample = sample_columns(units, max_units, rng)
    return FeatureSummary(gram=gram, row_sums=row_sums, n_units=units,
                          unit_sample=np.asarray(store[:, sample], dtype=np.float32))
