"""Forward hooks that only observe population modules run on the fast strategies: the
dispatcher fires them with the activity it computed (every step of a recurrent network), in
the plain path's order; a hook that replaces an activity continues the call on the plain path
from there; hooks only the plain path honours (on convolutions, pre-hooks) send it there."""

from __future__ import annotations

import copy
from collections import OrderedDict

import pytest
import torch

import mnc
from mnc.errors import BackendError
from mnc.lowering.schedule import time_schedule
from mnc_backends.torch.fast import native
from mnc_backends.torch.module import INPUT, MouseNet
from mnc_backends.torch.names import population_key
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import TINY_SPEC
from tests.recurrent_irs import randomised

pytestmark = pytest.mark.torch

TOLERANCE = 1e-5
FAST = ["merged"] + (["sparse"] if native.available() else [])


@pytest.fixture
def model() -> MouseNet:
    return copy.deepcopy(model_pair(TINY_SPEC)[0]).eval()


class HookWrapper:
    """Activations the way a neural-benchmark wrapper collects them: a forward hook per layer,
    found by its dotted module name, storing ``output`` as numpy; one call under no_grad in
    eval mode; hooks removed afterwards."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._model = model

    def get_layer(self, layer_name: str) -> torch.nn.Module:
        module = self._model
        for part in layer_name.split("."):
            module = module._modules.get(part)
            assert module is not None, f"no layer {layer_name}"
        return module

    def get_activations(self, images: torch.Tensor, layer_names: list[str]) -> OrderedDict:
        self._model.eval()
        results: OrderedDict = OrderedDict()
        hooks = []
        for layer_name in layer_names:

            def hook(_layer, _input, output, name=layer_name) -> None:  # noqa: ANN001
                results[name] = output.cpu().data.numpy()

            hooks.append(self.get_layer(layer_name).register_forward_hook(hook))
        with torch.no_grad():
            self._model(images)
        for hook in hooks:
            hook.remove()
        return results


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    scale = max(1.0, float(expected.abs().max()))
    assert float((got - expected).abs().max()) <= TOLERANCE * scale


def _choices(model: MouseNet) -> list[str]:
    """What the dispatcher picks for each call while the test runs."""
    chosen: list[str] = []
    dispatcher = model.dispatcher()
    original = dispatcher._choose_checked

    def spy(*args, **kwargs) -> str:  # noqa: ANN002, ANN003
        chosen.append(original(*args, **kwargs))
        return chosen[-1]

    dispatcher._choose_checked = spy
    return chosen


@pytest.mark.parametrize("strategy", ["auto", *FAST])
def test_a_wrapper_hooking_layers_by_name_sees_features_on_the_fast_path(model, strategy):
    names = ["VISp4", "VISl2/3", "VISpor5"]
    layers = [f"populations.{population_key(name)}" for name in names]
    images = images_for(model, 3, seed=4)
    with torch.no_grad():
        hook_free = model.dispatcher().choose(images, strategy)
    chosen = _choices(model.set_strategy(strategy))
    got = HookWrapper(model).get_activations(images, layers + ["populations.VISal4.relu"])
    assert chosen == [hook_free] and hook_free != "plain"
    with torch.inference_mode():
        expected = model.features(images, [*names, "VISal4"])
        plain = model.plain_features(images, [*names, "VISal4"])
    for layer, name in zip([*layers, "populations.VISal4.relu"], [*names, "VISal4"], strict=True):
        _close(torch.from_numpy(got[layer]), expected[name])
        _close(torch.from_numpy(got[layer]), plain[name])


@pytest.mark.skipif(not native.available(), reason="the sparse kernel is not built")
def test_hooks_fire_in_inference_mode_on_the_sparse_kernel_for_features_too(model):
    images = images_for(model, 2)
    seen: list[str] = []
    handles = [
        model.population_module(name).register_forward_hook(
            lambda module, args, output, name=name: seen.append(name)
        )
        for name in ["VISpor5", "VISp4", "VISl4"]
    ]
    chosen = _choices(model)
    with torch.inference_mode():
        model(images)
        model.features(images, ["VISl2/3"])  # computes VISp4 and VISl4, not VISpor5
    for handle in handles:
        handle.remove()
    assert chosen == ["sparse", "sparse"]
    assert seen == ["VISp4", "VISl4", "VISpor5", "VISp4", "VISl4"]  # the IR's order


@pytest.mark.parametrize("strategy", FAST)
def test_a_replacing_hook_continues_the_call_on_the_plain_path(model, strategy):
    images = images_for(model, 2, seed=5)
    calls: list[str] = []

    def double(module, args, output):  # noqa: ANN001, ANN202
        calls.append("VISp4")
        return output * 2

    with torch.inference_mode():
        handle = model.population_module("VISp4").register_forward_hook(double)
        expected = model.set_strategy("plain")(images)
        calls.clear()
        later = model.population_module("VISpor5").register_forward_hook(
            lambda module, args, output: calls.append("VISpor5")
        )
        logits = model.set_strategy(strategy)(images)
        handle.remove()
        later.remove()
        untouched = model(images)
    assert calls == ["VISp4", "VISpor5"]  # each once, in order
    _close(logits, expected)
    assert float((logits - untouched).abs().max()) > 1e-3  # the replacement took effect


def test_hooks_per_step_on_a_recurrent_network(tiny_ir):
    network = randomised(mnc.compile_ir("tiny-feedback")).eval()
    steps = network.ir.dynamics.steps
    images = images_for(network, 2, seed=6)
    recorded: list[torch.Tensor] = []
    handle = network.population_module("VISp2/3").register_forward_hook(
        lambda module, args, output: recorded.append(output.clone())
    )
    chosen = _choices(network)
    with torch.no_grad():
        logits = network(images)
        handle.remove()
        expected = network.plain_features(images, ["VISp2/3"])["VISp2/3"]
        plain = network.plain_forward(images)
    # (the sparse kernel runs it where built; the hooks observe merged's activity per step)
    assert chosen == ["sparse" if "sparse" in FAST else "merged"]
    assert len(recorded) == steps
    for step in range(steps):
        _close(recorded[step], expected[:, step])
    _close(logits, plain)


@pytest.mark.parametrize("strategy", ["plain", "merged"])
def test_recurrent_hooks_fire_at_the_steps_the_schedule_computes(strategy):
    network = randomised(mnc.compile_ir("tiny-feedback")).eval().set_strategy(strategy)
    images = images_for(network, 2, seed=8)
    seen: list[str] = []
    handles = [
        network.population_module(name).register_forward_hook(
            lambda module, args, output, name=name: seen.append(name)
        )
        for name in ["VISp4", "VISl2/3", "VISp2/3"]
    ]
    with torch.no_grad():
        network.features(images, ["VISp2/3"])
    for handle in handles:
        handle.remove()
    schedule = time_schedule(network.ir, ["VISp2/3"], range(network.ir.dynamics.steps))
    assert seen == [c.population for c in schedule.computations if c.population in
                    ("VISp4", "VISl2/3", "VISp2/3")]


def test_hooks_the_fast_path_cannot_honour_send_the_call_to_plain(model):
    images = images_for(model, 2)
    chosen = _choices(model)
    with torch.inference_mode():
        handle = model.conv("VISp4->VISl4").register_forward_hook(lambda *args: None)
        model(images)
        handle.remove()
        handle = model.population_module("VISl4").register_forward_pre_hook(lambda *args: None)
        model(images)
        handle.remove()
        handle = model.population_module("VISl4").register_forward_hook(lambda *args: None)
        model(images)
        handle.remove()
    assert chosen[:2] == ["plain", "plain"]
    assert chosen[2] != "plain"


@pytest.mark.parametrize("strategy", FAST)
def test_a_hook_reading_the_drive_is_told_to_use_plain(model, strategy):
    images = images_for(model, 2)
    handle = model.population_module("VISp4").register_forward_hook(
        lambda module, args, output: args[0]
    )
    with torch.inference_mode(), pytest.raises(BackendError, match="set_strategy\\('plain'\\)"):
        model.set_strategy(strategy)(images)
    handle.remove()


def test_keyword_hooks_and_classifier_hooks_fire(model):
    images = images_for(model, 2)
    seen: list[str] = []
    handles = [
        model.population_module("VISp5").register_forward_hook(
            lambda module, args, kwargs, output: seen.append("VISp5"), with_kwargs=True
        ),
        model.classifier.register_forward_hook(
            lambda module, args, output: seen.append("classifier")
        ),
    ]
    with torch.inference_mode():
        model(images)
        model.features(images, [INPUT, "VISp5"])
    for handle in handles:
        handle.remove()
    assert seen == ["VISp5", "classifier", "VISp5"]


def test_a_replacing_hook_on_a_recurrent_network_carries_into_later_steps():
    network = randomised(mnc.compile_ir("tiny-feedback")).eval()
    images = images_for(network, 2, seed=7)
    calls: list[int] = []

    def damp_from_step_one(module, args, output):  # noqa: ANN001, ANN202
        calls.append(1)
        return output * 0.5 if len(calls) % network.ir.dynamics.steps == 2 else None

    handle = network.population_module("VISl2/3").register_forward_hook(damp_from_step_one)
    with torch.no_grad():
        expected = network.set_strategy("plain")(images)
        logits = network.set_strategy("merged")(images)
        features = network.features(images, ["VISp2/3"])
        handle.remove()
        unhooked = network(images)
    # once per step the schedule computes it at, as on the plain path: every step for the
    # logits, all but the last for VISp2/3 (which reads VISl2/3 only through a delay)
    steps = network.ir.dynamics.steps
    assert len(calls) == 2 * steps + steps - 1
    _close(logits, expected)
    assert float((logits - unhooked).abs().max()) > 1e-4
    assert features["VISp2/3"].shape[1] == network.ir.dynamics.steps
