"""Population modules: forward hooks and fx feature extraction see every population's
activity (after ReLU), whatever the execution strategy, as neural-benchmark wrappers use them.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator

import pytest
import torch

from mnc.errors import BackendError
from mnc_backends.torch.fast import native
from mnc_backends.torch.module import INPUT, MouseNet, Population
from mnc_backends.torch.names import population_key
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.torch

TOLERANCE = 1e-5
"""Of a population's largest activity (or absolute, below 1): the strategies sum in other
orders, and activity reaches about 100 here, so float32 results differ by a few ulps of it."""
STRATEGIES = ["auto", "plain", "merged"] + (["sparse"] if native.available() else [])


@pytest.fixture
def model() -> Iterator[MouseNet]:
    """A private copy of the tiny spec's network, non-trivial BatchNorm statistics, eval."""
    yield copy.deepcopy(model_pair(TINY_SPEC)[0]).eval()


def _names(model: MouseNet) -> list[str]:
    return [name for name in model.ir.population_names() if name != INPUT]


def record_with_hooks(model: torch.nn.Module, images: torch.Tensor, names: list[str],
                      ) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    """What a hook-based activations extractor does: a forward hook per layer, one
    inference call in eval mode, hooks removed afterwards."""
    recorded: dict[str, torch.Tensor] = {}
    calls = dict.fromkeys(names, 0)

    def store(name: str):  # noqa: ANN202 - a hook factory
        def hook(module, args, output) -> None:  # noqa: ANN001
            recorded[name] = output.detach().clone()
            calls[name] += 1
        return hook

    handles = [model.population_module(name).register_forward_hook(store(name))
               for name in names]
    try:
        model.eval()
        with torch.inference_mode():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    return recorded, calls


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    difference = float((got - expected).abs().max())
    scale = max(1.0, float(expected.abs().max()))
    assert difference <= TOLERANCE * scale, (difference, scale)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_forward_hooks_see_every_population_after_relu_under_every_strategy(model, strategy):
    model.set_strategy(strategy)
    names = _names(model)
    images = images_for(model, 3, seed=1)
    recorded, calls = record_with_hooks(model, images, names)
    assert calls == dict.fromkeys(names, 1)
    with torch.inference_mode():
        plain = model.plain_features(images, names)
        fast = model.features(images, names)
    for name in names:
        assert float(recorded[name].min()) >= 0.0, name  # after the ReLU
        _close(recorded[name], plain[name])
        _close(recorded[name], fast[name])


def test_hooks_make_the_dispatcher_run_plain_until_removed(model):
    images = images_for(model, 2)
    dispatcher = model.dispatcher()
    with torch.inference_mode():
        fast = dispatcher.choose(images)
        assert fast != "plain"
        handle = model.population_module("VISl2/3").register_forward_pre_hook(
            lambda module, args: None)
        assert dispatcher.choose(images) == "plain"
        assert dispatcher.choose(images, "merged") == "plain"
        handle.remove()
        assert dispatcher.choose(images) == fast


def test_a_hook_on_any_submodule_or_every_module_fires(model):
    images = images_for(model, 2)
    seen: list[str] = []
    handle = model.norms[population_key("VISp5")].register_forward_hook(
        lambda module, args, output: seen.append("norm"))
    with torch.inference_mode():
        model(images)
    handle.remove()
    assert seen == ["norm"]

    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, output: seen.append(type(module).__name__))
    try:
        with torch.inference_mode():
            model(images)
    finally:
        handle.remove()
    assert seen.count("Population") == seen.count("ReLU") == len(_names(model))


def test_a_swapped_population_module_is_watched(model):
    images = images_for(model, 2)
    with torch.inference_mode():
        model(images)  # the dispatcher lists the modules now
    model.populations[population_key("VISp4")] = Population("VISp4")
    seen: list[int] = []
    handle = model.population_module("VISp4").register_forward_hook(
        lambda module, args, output: seen.append(1))
    with torch.inference_mode():
        model(images)
    handle.remove()
    assert seen == [1]


def test_population_module_names_and_errors(model):
    assert model.population_module("VISl2/3") is model.population_module("VISl2_3")
    assert model.get_submodule("populations.VISl2_3") is model.population_module("VISl2/3")
    with pytest.raises(BackendError, match="'input' is the image itself"):
        model.population_module(INPUT)
    with pytest.raises(BackendError, match="'VISx4' is not a population.*VISp4"):
        model.population_module("VISx4")


def test_population_modules_leave_the_state_dict_names_alone(model):
    assert not any(key.startswith("populations.") for key in model.state_dict())


def extract_with_fx(model: torch.nn.Module, names: list[str]) -> torch.fx.GraphModule:
    """What ``torchvision``'s ``create_feature_extractor`` does: trace the model, make the
    graph return the population modules' outputs, drop what they do not need."""
    traced = torch.fx.symbolic_trace(model)
    nodes = {node.target: node for node in traced.graph.nodes if node.op == "call_module"}
    outputs = {name: nodes[f"populations.{population_key(name)}.relu"] for name in names}
    output = next(node for node in traced.graph.nodes if node.op == "output")
    output.args = (outputs,)
    traced.graph.eliminate_dead_code()
    traced.recompile()
    return traced


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_fx_symbolic_trace_exposes_populations_by_name(model, training):
    model.train(training)
    names = _names(model)
    extractor = extract_with_fx(model, names)
    kept = {node.target for node in extractor.graph.nodes if node.op == "call_module"}
    assert "classifier" not in kept  # only what the populations need is left
    # torchvision's extractor strips a trailing _<digits> from node names (VISp2_3 -> VISp2)
    populations = [target for target in kept if target.startswith("populations.")]
    assert len(populations) == len(names)
    assert not any(re.match(r".+_[0-9]+$", target) for target in populations)
    images = images_for(model, 2, seed=2)
    model.eval()
    extractor.eval()
    with torch.inference_mode():
        got = extractor(images)
        expected = model.features(images, names)
        plain = model.plain_features(images, names)
    assert list(got) == names
    for name in names:
        _close(got[name], expected[name])
        _close(got[name], plain[name])


def test_fx_traced_logits_equal_the_model(model):
    images = images_for(model, 2)
    traced = torch.fx.symbolic_trace(model)
    with torch.inference_mode():
        _close(traced(images), model.plain_forward(images))


def test_torchvision_create_feature_extractor():
    feature_extraction = pytest.importorskip("torchvision.models.feature_extraction")
    model = copy.deepcopy(model_pair(TINY_SPEC)[0]).eval()
    names = ["VISp4", "VISl2/3", "VISpor5"]
    nodes = {f"populations.{population_key(name)}.relu": name for name in names}
    extractor = feature_extraction.create_feature_extractor(model, return_nodes=nodes)
    images = images_for(model, 2)
    with torch.inference_mode():
        got = extractor.eval()(images)
        expected = model.features(images, names)
    for name in names:
        _close(got[name], expected[name])
