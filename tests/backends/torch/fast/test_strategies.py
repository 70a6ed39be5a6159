"""Every execution strategy computes what the reference-semantics network computes."""

from __future__ import annotations

import copy

import pytest
import torch

from mnc.errors import BackendError
from mnc_backends.torch.fast import native
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import DEFAULT_SPEC, SPECS, TINY_SPEC

pytestmark = pytest.mark.torch

VARIANTS = [TINY_SPEC, SPECS / "variants" / "visp-only.yaml",
            SPECS / "variants" / "no-vispor.yaml"]
TOLERANCE = 1e-4
needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"sparse kernel not built: {native.unavailable_reason()}")


def _eval_strategies() -> list[str]:
    return ["plain", "merged"] + (["sparse"] if native.available() else [])


def _check_eval(spec, batch: int) -> None:
    model, reference = model_pair(spec)
    images = images_for(model, batch, seed=batch)
    with torch.inference_mode():
        expected = reference(images)
        for strategy in _eval_strategies():
            got = model.set_strategy(strategy).eval()(images)
            difference = float((got - expected).abs().max())
            assert difference < TOLERANCE, (spec.name, strategy, batch, difference)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 7])
def test_default_spec_every_strategy_matches_reference(batch):
    _check_eval(DEFAULT_SPEC, batch)


@pytest.mark.parametrize("spec", VARIANTS, ids=lambda path: path.stem)
@pytest.mark.parametrize("batch", [1, 7])
def test_variants_every_strategy_matches_reference(spec, batch):
    _check_eval(spec, batch)


def test_non_square_input_variant(write_variant):
    spec = write_variant({"input": {"height_px": 24, "width_px": 40, "source": "test"}},
                         base=TINY_SPEC)
    _check_eval(spec, 3)


@needs_native
@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_every_instruction_set_matches_reference(isa, monkeypatch):
    monkeypatch.setenv("MNC_SPARSE_ISA", isa)
    model, reference = model_pair(TINY_SPEC)
    images = images_for(model, 3)
    with torch.inference_mode():
        difference = (model.set_strategy("sparse").eval()(images) - reference(images)).abs().max()
    assert float(difference) < TOLERANCE


_TRAINING = [(strategy, dtype) for strategy in ("plain", "merged")
             for dtype in (torch.float64, torch.float32)]
if native.available():  # the sparse kernel computes in float32 only
    _TRAINING.append(("sparse", torch.float32))


@pytest.mark.parametrize(("strategy", "dtype"), _TRAINING, ids=str)
def test_training_step_matches_reference_and_keeps_masked_taps_zero(strategy, dtype):
    """Same gradients and BN statistics as the reference, and an exactly zero gradient on
    masked taps. Gradients are compared in float64: in float32, train-mode BatchNorm backward
    over a batch of 7 amplifies the different summation orders of the convolutions to about
    1e-2 of a layer's largest gradient."""
    shared, shared_reference = model_pair(TINY_SPEC)
    model, reference = copy.deepcopy(shared).to(dtype), copy.deepcopy(shared_reference).to(dtype)
    fast = model.set_strategy(strategy).train()
    reference.train()
    images = images_for(model, 7, seed=5).to(dtype)
    labels = torch.arange(7) % model.ir.readout.classes
    for module in (fast, reference):
        torch.nn.functional.cross_entropy(module(images), labels).backward()
    for key, conv in model.convs.items():
        expected = reference.convs[key].weight.grad
        if dtype == torch.float64:
            scale = float(expected.abs().max())
            assert float((conv.weight.grad - expected).abs().max()) <= 1e-9 * scale, key
        assert not bool(conv.weight.grad[conv.mask == 0].any()), key
    for name, norm in model.norms.items():
        assert torch.allclose(norm.running_var, reference.norms[name].running_var,
                              atol=1e-4), name


def test_merged_eval_cache_follows_weight_updates():
    model, reference = model_pair(TINY_SPEC)
    fast = model.set_strategy("merged").eval()
    images = images_for(model, 2)
    key = next(iter(model.convs))
    original = model.convs[key].weight.detach().clone()
    try:
        with torch.inference_mode():
            fast(images)
        with torch.no_grad():
            model.convs[key].weight.mul_(3.0)
            reference.convs[key].weight.mul_(3.0)
        with torch.inference_mode():
            difference = (fast(images) - reference(images)).abs().max()
        assert float(difference) < TOLERANCE
    finally:
        with torch.no_grad():
            model.convs[key].weight.copy_(original)
            reference.convs[key].weight.copy_(original)


@pytest.mark.parametrize("strategy", _eval_strategies())
def test_cached_weights_follow_a_swapped_submodule(strategy):
    """Swapping a BatchNorm for another (as convert_sync_batchnorm does) after a first call
    must not leave the folded weights of the old one in use."""
    model = copy.deepcopy(model_pair(TINY_SPEC)[0])
    images = images_for(model, 2)
    fast = model.set_strategy(strategy).eval()
    with torch.inference_mode():
        fast(images)
    key = next(iter(model.norms))
    swapped = copy.deepcopy(model.norms[key])
    with torch.no_grad():
        swapped.running_mean.add_(0.5)
    model.norms[key] = swapped
    with torch.inference_mode():
        difference = (fast(images) - model.plain_forward(images)).abs().max()
    assert float(difference) < TOLERANCE


def test_deprecated_view_warns_names_the_one_api_and_still_runs():
    from mnc_backends.torch.fast.accelerate import FastMouseNet, accelerate

    model, reference = model_pair(TINY_SPEC)
    images = images_for(model, 2)
    with pytest.warns(DeprecationWarning, match=r"model\.set_strategy\('merged'\)"):
        fast = accelerate(model, "merged")
    assert list(fast.state_dict()) == list(model.state_dict())
    assert {id(p) for p in fast.parameters()} == {id(p) for p in model.parameters()}
    with torch.inference_mode():
        assert float((fast.eval()(images) - reference(images)).abs().max()) < TOLERANCE
    assert model.strategy == "auto"  # the view's strategy is its own
    with pytest.warns(DeprecationWarning, match="FastMouseNet is deprecated"):
        FastMouseNet(model)


def test_auto_picks_by_call():
    model, _ = model_pair(TINY_SPEC)
    fast = model.dispatcher()
    images = images_for(model, 2)
    with torch.inference_mode():
        assert fast.choose(images) == ("sparse" if native.available() else "merged")
        assert fast.choose(images.double()) == "merged"
        assert fast.choose(images[:, :, :8]) == "merged"
    with_autograd = "sparse" if native.available() else "merged"
    assert fast.choose(images) == with_autograd  # gradients enabled: the batch path
    assert fast.choose(images.double()) == "merged"
    model.train()
    with torch.inference_mode():
        assert fast.choose(images) == with_autograd
        # merged is measured on the CPU only: other devices fall back to plain
        assert fast.choose(torch.empty(2, 3, 32, 32, device="meta")) == "plain"
    model.eval()


@pytest.mark.parametrize("size", [24, 33, 40], ids=lambda size: f"{size}px")
def test_merged_matches_plain_on_inputs_of_other_sizes(size):
    """The plain path runs any input size (the grids follow it); merged must agree, in
    inference and training."""
    model = copy.deepcopy(model_pair(TINY_SPEC)[0])  # training changes BN statistics
    images = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(size))
    for training in (False, True):
        model.train(training)
        with torch.no_grad():
            assert model.dispatcher().choose(images) == "merged"
            difference = (model.set_strategy("merged")(images) - model.plain_forward(images)).abs()
        assert float(difference.max()) < TOLERANCE, training


def test_merged_runs_float64():
    shared, shared_reference = model_pair(TINY_SPEC)
    model, reference = copy.deepcopy(shared).double(), copy.deepcopy(shared_reference).double()
    images = images_for(model, 2).double()
    with torch.inference_mode():
        got = model.set_strategy("merged").eval()(images)
        expected = reference(images)
    assert float((got - expected).abs().max()) < 1e-9


def test_weights_loaded_under_inference_mode_are_not_cached_stale():
    shared, shared_reference = model_pair(TINY_SPEC)
    images = images_for(shared, 2)
    with torch.inference_mode():
        model, reference = copy.deepcopy(shared), copy.deepcopy(shared_reference)
        fast = model.set_strategy("auto").eval()
        fast(images)
        for module in (model, reference):
            module.norms[next(iter(module.norms))].bias.add_(1.0)
        difference = (fast(images) - reference(images)).abs().max()
    assert float(difference) < TOLERANCE


def test_unknown_strategy_is_a_backend_error():
    model, _ = model_pair(TINY_SPEC)
    with pytest.raises(BackendError, match="unknown execution strategy 'fastest'"):
        model.set_strategy("fastest")


@needs_native
@pytest.mark.parametrize("batch", [1, 3, 9])
def test_sparse_threads_share_small_batches_and_split_large_ones(batch):
    from mnc_backends.torch.fast.sparse import SparseExecutor

    model, reference = model_pair(TINY_SPEC)
    images = images_for(model, batch, seed=11)
    executor = SparseExecutor(model, threads=4)
    with torch.inference_mode():
        difference = (executor.forward(images) - reference(images)).abs().max()
    assert float(difference) < TOLERANCE


@needs_native
def test_sparse_calls_from_several_python_threads_give_each_its_own_answer():
    """A served model gets concurrent calls; they share one executor and its arenas."""
    from concurrent.futures import ThreadPoolExecutor

    model, reference = model_pair(TINY_SPEC)
    batches = [images_for(model, batch, seed=batch) for batch in (1, 2, 3, 5)] * 3
    fast = model.set_strategy("sparse").eval()
    with torch.inference_mode():
        expected = [reference(images) for images in batches]

        def call(images: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return fast(images)

        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(call, batches))
    for got, want in zip(results, expected, strict=True):
        assert float((got - want).abs().max()) < TOLERANCE


@needs_native
def test_forced_sparse_with_gradients_runs_the_batch_path_or_says_why():
    model, _ = model_pair(TINY_SPEC)
    fast = model.set_strategy("sparse").eval()
    images = images_for(model, 2)
    difference = (fast(images) - model.plain_forward(images)).detach().abs().max()
    assert float(difference) < TOLERANCE
    with pytest.raises(BackendError, match="float32 on cpu"):
        fast(images.double())
