"""The sparse kernel's readout of a few images: the logits torch's linear layer gives, on any
number of threads; calls outside inference mode and larger batches keep torch's linear."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mnc_backends.torch.fast import native  # noqa: E402
from mnc_backends.torch.fast import sparse as sparse_module  # noqa: E402
from tests.backends.torch.fast.helpers import images_for, model_pair  # noqa: E402
from tests.conftest import DEFAULT_SPEC  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.skipif(
    not native.available(), reason="sparse kernel not built")]


def _readout(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
             threads: int) -> tuple[int, torch.Tensor]:
    logits = torch.full((features.shape[0], weight.shape[0]), float("nan"))
    status = native.library().mnc_dense_readout(
        features.data_ptr(), features.shape[0], features.shape[1], weight.data_ptr(),
        bias.data_ptr(), weight.shape[0], logits.data_ptr(), threads)
    return status, logits


@pytest.mark.parametrize("inputs", [1, 31, 32, 33, 2304])
@pytest.mark.parametrize("count", [0, 1, 3, 8])
def test_readout_equals_the_linear_layer(inputs, count):
    generator = torch.Generator().manual_seed(inputs + count)
    features = torch.randn(count, inputs, generator=generator)
    weight = torch.randn(37, inputs, generator=generator)
    bias = torch.randn(37, generator=generator)
    expected = torch.nn.functional.linear(features.double(), weight.double(), bias.double())
    results = []
    for threads in (1, 2, 3):
        status, logits = _readout(features, weight, bias, threads)
        assert status == 0
        if count:
            scale = max(1.0, float(expected.abs().max()))
            assert float((logits.double() - expected).abs().max()) <= 1e-5 * scale
        results.append(logits)
    # each row summed in one fixed order: the same logits on any number of threads
    assert all(torch.equal(results[0], other) for other in results[1:])


def test_readout_refuses_more_images_than_it_serves():
    features, weight, bias = torch.ones(9, 4), torch.ones(2, 4), torch.ones(2)
    status, logits = _readout(features, weight, bias, 1)
    assert status == -1 and bool(logits.isnan().all())  # nothing written


def test_small_batches_without_gradients_take_the_kernel_readout(monkeypatch):
    model, _ = model_pair(DEFAULT_SPEC)
    model.set_strategy("sparse").eval()
    executor = model.dispatcher().sparse_executor()
    served = []
    original = type(executor)._readout

    def spy(self, *args):  # noqa: ANN001, ANN002, ANN202
        served.append(args[0].shape[0])
        return original(self, *args)

    monkeypatch.setattr(type(executor), "_readout", spy)
    for batch in (1, sparse_module.READOUT_MAX_IMAGES, sparse_module.READOUT_MAX_IMAGES + 1):
        images = images_for(model, batch, seed=batch)
        with torch.inference_mode():
            logits = model(images)
            expected = model.plain_forward(images)
        assert float((logits - expected).abs().max()) <= 1e-4 * float(expected.abs().max())
    assert served == [1, sparse_module.READOUT_MAX_IMAGES]
    with torch.no_grad():  # no gradient either: the kernel's readout
        logits = model(images_for(model, 1))
        expected = model.plain_forward(images_for(model, 1))
    assert float((logits - expected).abs().max()) <= 1e-4 * float(expected.abs().max())
    assert served == [1, sparse_module.READOUT_MAX_IMAGES, 1]
    # with autograd on, torch's linear: the logits keep their gradient to the classifier
    logits = model(images_for(model, 1))
    assert served == [1, sparse_module.READOUT_MAX_IMAGES, 1]
    logits.sum().backward()
    assert model.classifier.weight.grad is not None
    model.zero_grad(set_to_none=True)
