"""fp16 export refuses weights float16 cannot hold (they would turn into infinities and every
prediction into NaN), naming the tensor; weights within range export as before."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.backend import BackendOptions
from mnc.errors import UserFileError
from mnc_backends.onnx import OnnxBackend
from mnc_backends.onnx.builder import Builder
from tests.backends.onnx.helpers import random_state

pytestmark = [pytest.mark.onnx, pytest.mark.torch]
pytest.importorskip("torch")


@pytest.mark.parametrize("value", [70000.0, -1e9, 1e38])
def test_a_value_beyond_float16_is_refused_naming_the_tensor(value: float) -> None:
    with pytest.raises(UserFileError, match=r"VISp4:weight.*beyond float16's range"):
        Builder(float16=True).constant("VISp4:weight", np.array([0.5, value], np.float32))


def test_values_within_float16_are_kept_and_float32_takes_anything() -> None:
    builder = Builder(float16=True)
    builder.constant("w", np.array([65504.0, -1.0, np.nan], np.float32))
    assert builder.initializers[0].data_type == 10  # FLOAT16
    Builder(float16=False).constant("w", np.array([1e30], np.float32))


def test_fp16_export_of_a_network_with_huge_weights_is_refused(small_ir) -> None:
    state = random_state(small_ir)
    name = next(key for key in state if key.startswith("convs.") and key.endswith(".weight"))
    state[name] = state[name] * 0 + 1e6
    options = BackendOptions(extra={"state_dict": state, "fp16": True})
    with pytest.raises(UserFileError, match="beyond float16's range"):
        OnnxBackend().compile(small_ir, options)
