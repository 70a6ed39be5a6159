"""What the fast strategies prepare from the weights (folded kernels, sparse programs, mask
density) follows every change of the weights: in place, loaded, an optimizer's step, a swapped
tensor, and writes torch cannot see once ``model.invalidate()`` is called."""

from __future__ import annotations

import copy

import pytest
import torch

from mnc_backends.torch.fast import native
from mnc_backends.torch.fast.dispatch import SPARSE_MAX_DENSITY
from tests.backends.torch.fast.helpers import images_for, model_pair
from tests.conftest import TINY_SPEC

pytestmark = pytest.mark.torch

TOLERANCE = 1e-4
FAST = ["merged"] + (["sparse"] if native.available() else [])
needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"sparse kernel not built: {native.unavailable_reason()}")


@pytest.fixture
def model():  # noqa: ANN201
    """A private copy of the tiny network (non-trivial BatchNorm statistics), eval mode."""
    return copy.deepcopy(model_pair(TINY_SPEC)[0]).set_strategy("auto").eval()


def _difference(model, strategy: str, images: torch.Tensor) -> float:  # noqa: ANN001
    with torch.inference_mode():
        got = model.set_strategy(strategy)(images)
        expected = model.plain_forward(images)
    return float((got - expected).abs().max())


@pytest.mark.parametrize("strategy", FAST)
def test_in_place_update_after_a_fast_call(model, strategy):
    images = images_for(model, 2)
    assert _difference(model, strategy, images) < TOLERANCE  # prepares from the weights
    with torch.no_grad():
        model.conv("VISp4->VISp2/3").weight.mul_(3.0)
        model.norms["VISp5"].running_var.mul_(0.25)
    assert _difference(model, strategy, images) < TOLERANCE


@pytest.mark.parametrize("strategy", FAST)
def test_load_state_dict_after_a_fast_call(model, strategy):
    images = images_for(model, 2)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for conv in other.convs.values():
            conv.weight.mul_(-1.5)
        for norm in other.norms.values():
            norm.bias.add_(0.3)
    with torch.inference_mode():
        before = model.set_strategy(strategy)(images)
    for assign in (False, True):
        model.load_state_dict(copy.deepcopy(other.state_dict()), assign=assign)
        assert _difference(model, strategy, images) < TOLERANCE, assign
    with torch.inference_mode():
        assert not torch.allclose(model(images), before, atol=TOLERANCE)


@pytest.mark.parametrize("strategy", FAST)
def test_optimizer_step_after_a_fast_call(model, strategy):
    images = images_for(model, 4, seed=2)
    labels = torch.arange(4) % model.ir.readout.classes
    assert _difference(model, strategy, images) < TOLERANCE
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    model.set_strategy("auto").train()
    for _ in range(2):  # the second step moves by momentum too
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    model.eval()
    assert _difference(model, strategy, images) < TOLERANCE


@pytest.mark.parametrize("strategy", FAST)
def test_invalidate_after_writes_torch_does_not_see(model, strategy):
    """A write through ``numpy()`` bumps no version counter; ``invalidate`` is the call."""
    images = images_for(model, 2)
    assert _difference(model, strategy, images) < TOLERANCE
    with torch.inference_mode():
        before = model(images)
    model.conv("VISp4->VISp2/3").weight.detach().numpy()[...] *= -1.0
    model.invalidate()
    assert _difference(model, strategy, images) < TOLERANCE
    with torch.inference_mode():
        assert not torch.allclose(model(images), before, atol=TOLERANCE)


@needs_native
def test_mask_density_follows_the_masks(model):
    """``auto`` picks the sparse kernel for sparse masks; masks made dense after a first
    call must send it to the dense convolutions, not keep the first density."""
    images = images_for(model, 2)
    dispatcher = model.dispatcher()
    with torch.inference_mode():
        assert dispatcher.choose(images) == "sparse"
    assert dispatcher.mask_density() <= SPARSE_MAX_DENSITY
    with torch.no_grad():
        for conv in model.convs.values():
            conv.mask.fill_(1.0)
    assert dispatcher.mask_density() == 1.0
    with torch.inference_mode():
        assert dispatcher.choose(images) == "merged"
    assert _difference(model, "auto", images) < TOLERANCE


def test_a_copy_loads_into_its_own_cache_only(model):
    """The load hook is a plain function: the model still pickles, and a copy's load drops
    only the copy's prepared weights."""
    import pickle

    images = images_for(model, 2)
    assert _difference(model, "merged", images) < TOLERANCE
    clone = pickle.loads(pickle.dumps(model))
    assert _difference(clone, "merged", images) < TOLERANCE
    prepared = dict(model.dispatcher().cache._entries)  # noqa: SLF001
    state = {key: value.clone() for key, value in clone.state_dict().items()}
    state["classifier.bias"] += 1.0
    clone.load_state_dict(state)
    assert model.dispatcher().cache._entries == prepared  # noqa: SLF001
    assert _difference(clone, "merged", images) < TOLERANCE
