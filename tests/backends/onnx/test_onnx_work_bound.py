"""predict and bench bound the work one image asks for (every step of a recurrent network)
before starting: a small file of many unrolled steps is refused with one message, not run
for minutes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnc.analysis.cost import network_cost
from mnc.backend import BackendOptions
from mnc.errors import SizeLimitError
from mnc_backends.onnx import OnnxBackend
from mnc_backends.onnx.runtime import open_model
from mnc_backends.onnx.work import graph_macs

pytestmark = [pytest.mark.onnx]


@pytest.fixture(scope="module")
def recurrent_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    from tests.recurrent_irs import tiny_recurrent

    ir = tiny_recurrent(steps=6)
    backend = OnnxBackend()
    model = backend.compile(ir, BackendOptions())
    path = tmp_path_factory.mktemp("work") / "recurrent.onnx"
    backend.save(model, path, BackendOptions())
    return path, network_cost(ir).dense_macs_total


def test_the_count_follows_the_steps(recurrent_file: tuple[Path, int]) -> None:
    import onnx

    path, dense = recurrent_file
    counted = graph_macs(onnx.load(str(path)))
    assert dense <= counted <= 1.5 * dense  # merged kernel boxes pad some taps


def test_a_model_asking_too_much_work_is_refused_before_a_session(
    recurrent_file: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, dense = recurrent_file
    monkeypatch.setenv("MNC_MAX_GMACS", str(dense / 2 / 1e9))
    with pytest.raises(
        SizeLimitError, match=f"{path}: the model asks for .* per image.*MNC_MAX_GMACS"
    ):
        open_model(path, "cpu")
    monkeypatch.setenv("MNC_MAX_GMACS", str(dense * 2 / 1e9))
    assert open_model(path, "cpu").path == path


def test_bench_refuses_before_timing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mnc.cli.main import main

    monkeypatch.setenv("MNC_MAX_GMACS", "0.001")
    assert main(["bench", "tiny", "--quick", "--no-onnx"]) == 2
    assert "multiply-accumulates per image" in capsys.readouterr().err
