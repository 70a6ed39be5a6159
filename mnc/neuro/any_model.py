"""Any ``torch.nn.Module`` as a model for the neural comparison: named layers via forward hooks.

A baseline such as VGG16 or AlexNet enters the same analyses as MouseNet: each requested
layer's output (after the layer, flattened per image) plays the part of a population. The
forward pass stops as soon as the last requested layer has run, so classifier heads cost
nothing. Models are named by a spec string:

- ``torchvision:NAME`` -- ``torchvision.models.NAME()`` (optional dependency; never downloads:
  pretrained weights come from a local file),
- ``module:package.module:factory`` -- any importable callable returning a module (a module
  in the working folder is found too).

Weights files are read with ``torch.load(weights_only=True)`` (after the archive's size check
of ``mnc_backends.torch.safe_load``): a state dict, or a dict holding one under
``state_dict`` or ``model``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mnc.errors import UserFileError
from mnc.neuro.model_features import UNTRAINED, LoadedModel, Preprocessor, file_sha256
from mnc.text import shown, suggest

MODEL_KINDS = ("torchvision", "module")


class _Captured(Exception):
    """Raised by the last hook so the rest of the forward pass is skipped."""


class HookedModule:
    """A module and the names of the layers whose outputs stand for populations."""

    def __init__(self, module: Any, layers: Sequence[str], name: str = "model"):
        if isinstance(layers, str):
            layers = [layers]
        if not layers:
            raise UserFileError(f"{name}: give at least one layer name (--layers)")
        named = dict(module.named_modules())
        unknown = [layer for layer in layers if layer not in named or layer == ""]
        if unknown:
            known = [key for key in named if key]
            shown = ", ".join(known[:40]) + (" ..." if len(known) > 40 else "")
            raise UserFileError(f"{name}: no layer named {unknown[0]!r}; the module has: "
                                f"{shown}")
        if len(set(layers)) != len(layers):
            raise UserFileError(f"{name}: layer names repeat in {list(layers)}")
        self.module = module.eval()
        self.layer_names = list(layers)
        self.name = name
        self._modules = {layer: named[layer] for layer in layers}
        description = f"{type(module).__module__}.{type(module).__qualname__}|{module!r}"
        self.network_key = hashlib.sha256(
            f"{description}|{','.join(self.layer_names)}".encode()).hexdigest()[:20]

    def features(self, images: Any, populations: Sequence[str] | None = None) -> dict[str, Any]:
        """{layer: (batch, units)} outputs of the requested layers for one batch of images."""
        wanted = list(populations) if populations else list(self.layer_names)
        captured: dict[str, Any] = {}

        def hook_for(layer: str) -> Any:
            def hook(_module: Any, _inputs: Any, output: Any) -> None:
                value = output[0] if isinstance(output, (tuple, list)) else output
                captured[layer] = value.detach().reshape(value.shape[0], -1)
                if len(captured) == len(wanted):
                    raise _Captured

            return hook

        handles = [self._modules[layer].register_forward_hook(hook_for(layer))
                   for layer in wanted]
        try:
            self.module(images)
        except _Captured:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [layer for layer in wanted if layer not in captured]
        if missing:
            raise UserFileError(f"{self.name}: layer {missing[0]!r} did not run in the forward "
                                f"pass")
        return {layer: captured[layer] for layer in wanted}


def state_key(module: Any) -> str:
    """sha256 over parameter and buffer names, shapes and bytes (names weights in caches)."""
    import torch  # lazy: the model side needs torch

    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tuple(value.shape)}|{value.dtype}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def wrap_module(module: Any, layers: Sequence[str], *, label: str | None = None,
                preprocess: Preprocessor | None = None,
                weights_key: str | None = None) -> LoadedModel:
    """A LoadedModel for any module: features from ``layers`` by forward hooks."""
    from mnc.neuro.model_features import Preprocess

    name = label or type(module).__name__
    hooked = HookedModule(module, layers, name)
    return LoadedModel(model=hooked, weights_key=weights_key or state_key(module), label=name,
                       preprocess=preprocess if preprocess is not None else Preprocess())


@contextlib.contextmanager
def _working_folder_importable() -> Iterator[None]:
    """Let ``module:NAME:factory`` find NAME.py in the working folder, as ``python -c``
    would, whether mnc runs as ``mnc`` or ``python -m mnc``; installed packages come
    first."""
    folder = os.getcwd()
    added = folder not in sys.path and "" not in sys.path
    if added:
        sys.path.append(folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


def build_module(spec: str) -> Any:
    """``torchvision:vgg16`` or ``module:pkg.mod:factory`` -> a freshly initialised module."""
    kind, _, rest = spec.partition(":")
    if kind not in MODEL_KINDS or not rest:
        raise UserFileError(f"--model {spec!r}: expected torchvision:NAME (e.g. "
                            f"torchvision:vgg16) or module:package.module:factory")
    if kind == "torchvision":
        try:
            models = importlib.import_module("torchvision.models")
        except ImportError as error:
            raise UserFileError(f"--model {spec}: torchvision is not installed ({error}); "
                                f"install the torchvision build matching your torch "
                                f"(pip install torchvision), or name a factory with "
                                f"module:package.module:factory") from None
        builders = _torchvision_builders(models)
        factory = getattr(models, rest, None)
        if not callable(factory) or rest.startswith("_") or rest not in builders:
            raise UserFileError(f"--model {shown(spec)}: torchvision.models has no model "
                                f"builder {shown(rest)!r}{suggest(rest, builders)}")
        return _checked_module(factory(weights=None), spec)
    module_name, _, attribute = rest.rpartition(":")
    if not module_name or not attribute:
        raise UserFileError(f"--model {spec!r}: expected module:package.module:factory")
    try:
        with _working_folder_importable():
            imported = importlib.import_module(module_name)
    except ImportError as error:
        raise UserFileError(f"--model {spec}: cannot import {module_name} ({error})") from None
    factory = getattr(imported, attribute, None)
    if not callable(factory):
        raise UserFileError(f"--model {spec}: {module_name} has no callable {attribute!r}")
    return _checked_module(factory(), spec)


def _torchvision_builders(models: Any) -> list[str]:
    """Names of torchvision's model builders (its registry; older versions: lower-case
    public callables, which are its builders)."""
    listing = getattr(models, "list_models", None)
    if callable(listing):
        return sorted(str(name) for name in listing())
    return sorted(name for name in dir(models) if not name.startswith("_") and name.islower()
                  and callable(getattr(models, name)))


def _checked_module(built: Any, spec: str) -> Any:
    """What a factory returned, if it is a torch module; one message otherwise."""
    import torch  # lazy: the model side needs torch

    if not isinstance(built, torch.nn.Module):
        raise UserFileError(f"--model {shown(spec)}: the factory returned "
                            f"{type(built).__name__}, not a torch.nn.Module; name a callable "
                            "that builds the network")
    return built


def load_weights(module: Any, path: str | Path) -> str:
    """Fill ``module`` from a local weights file (weights_only); return the file's sha256."""
    import torch  # noqa: F401  (lazy: without torch, say so before looking at the file)

    file = Path(path).expanduser()
    if not file.is_file():
        raise UserFileError(f"{file}: weights file not found (or give --weights {UNTRAINED})")
    state = _state_dict(file)
    _check_matches(file, state, module.state_dict())
    module.load_state_dict(state)
    return file_sha256(file)


def _state_dict(file: Path) -> dict[str, Any]:
    """The file's tensors by name (also under a ``state_dict`` or ``model`` key, and with
    DataParallel's ``module.`` prefix taken off)."""
    import torch  # lazy: the model side needs torch

    from mnc_backends.torch.safe_load import load_tensors

    # weights_only, after the archive's declared sizes are checked against the memory limit
    content = load_tensors(file, "torch weights file (a state dict saved with torch.save)")
    if isinstance(content, dict):
        for key in ("state_dict", "model"):
            if isinstance(content.get(key), dict):
                content = content[key]
                break
    if not isinstance(content, dict) or not all(isinstance(value, torch.Tensor)
                                                for value in content.values()):
        raise UserFileError(f"{file}: expected a state dict (names -> tensors)")
    return {name.removeprefix("module."): value for name, value in content.items()}


def _check_matches(file: Path, state: dict[str, Any], expected: dict[str, Any]) -> None:
    """The same names as the model's own state dict, each tensor of the same shape."""
    missing = [name for name in expected if name not in state]
    extra = [name for name in state if name not in expected]
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, unknown to the model"
        raise UserFileError(f"{file}: the state dict {what} ({len(missing)} missing, "
                            f"{len(extra)} unexpected entries); is it this model's weights?")
    for name, tensor in expected.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise UserFileError(f"{file}: {name} has shape {tuple(state[name].shape)}, the "
                                f"model expects {tuple(tensor.shape)}")


def load_any_model(spec: str, layers: Sequence[str], weights: str, seed: int = 0,
                   preprocess: Preprocessor | None = None) -> LoadedModel:
    """Build the module ``spec`` names, load weights (or seed untrained ones), hook layers."""
    import torch  # lazy: the model side needs torch

    with torch.random.fork_rng(devices=[]):  # seeds the init; the caller's generator stays
        torch.manual_seed(seed)
        module = build_module(spec)
    if weights == UNTRAINED:
        key = f"{UNTRAINED}-seed{seed}-{state_key(module)[:12]}"
    else:
        key = load_weights(module, weights)
    return wrap_module(module, layers, label=spec.split(":")[-1], preprocess=preprocess,
                       weights_key=key)


def compare_model(module: Any, layers: Sequence[str], recordings: Any, *,
                  preprocess: Preprocessor | None = None, label: str | None = None,
                  output_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                  selection: Any = None, options: Any = None, analysis: str = "rsa") -> Any:
    """RSA (or ``analysis="physiology"``) of any module's ``layers`` against recordings.

    ``recordings``: ``NeuralData``, a recordings file or an Allen cache folder, an
    ``xarray.Dataset`` or an ``rsatoolbox.data.Dataset`` (``mnc.neuro.interop``). The module's
    train/eval mode (of every submodule) is as it was afterwards.
    ``preprocess``: a callable (grey images (N, H, W) 0-255 -> (N, C, H, W) float32) or a
    ``Preprocess`` (size, mean, std); default 224 x 224 with ImageNet statistics. Returns the
    ``Report`` of ``run_rsa``/``run_physiology``: DataFrames with the model's label in the
    ``model`` column, so they concatenate with MouseNet's.
    """
    from mnc.neuro.api import AnalysisOptions, NeuralSelection, run_physiology, run_rsa

    if analysis not in ("rsa", "physiology"):
        raise UserFileError(f"analysis: expected 'rsa' or 'physiology', got {analysis!r}")
    modes = [(part, part.training) for part in getattr(module, "modules", list)()]
    try:
        loaded = wrap_module(module, layers, label=label, preprocess=preprocess)
        run = run_rsa if analysis == "rsa" else run_physiology
        return run(loaded, recordings, output_dir, cache_dir, selection or NeuralSelection(),
                   options or AnalysisOptions())
    finally:  # the comparison runs in eval mode; the user's module goes back as it was
        for part, training in modes:
            part.training = training
