"""Any torch module as a model: forward hooks, weights files, one table with MouseNet's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")

import pandas as pd

from mnc.cli.main import main
from mnc.errors import UserFileError
from mnc.neuro.api import AnalysisOptions, run_rsa
from mnc.neuro.sources.recording_files import save_recordings
from tests.neuro.small_models import build, small_recordings

torch = pytest.importorskip("torch")

from mnc.neuro import compare_model  # noqa: E402
from mnc.neuro.any_model import (  # noqa: E402
    HookedModule,
    build_module,
    load_weights,
    wrap_module,
)
from mnc.neuro.model_features import Preprocess  # noqa: E402

pytestmark = pytest.mark.neuro
FAST = AnalysisOptions(methods=("spearman",), n_boot=4, n_splits=2, regressions=())


def test_hooks_return_flattened_layer_outputs_and_skip_the_rest() -> None:
    torch.manual_seed(0)
    module = build()
    images = torch.randn(5, 3, 16, 16)
    head_calls = []
    module[7].register_forward_hook(lambda *args: head_calls.append(1))
    features = HookedModule(module, ["1", "4"]).features(images)
    assert list(features) == ["1", "4"]
    with torch.no_grad():
        expected = module[:5](images).reshape(5, -1)
    assert torch.allclose(features["4"], expected)
    assert features["1"].shape == (5, 4 * 16 * 16)
    assert head_calls == []  # the forward pass stopped after the last requested layer
    assert list(HookedModule(module, ["1", "4"]).features(images, ["1"])) == ["1"]


def test_unknown_layer_is_one_message_listing_the_known_ones() -> None:
    with pytest.raises(UserFileError, match=r"no layer named 'features.4'; the module has: 0, 1"):
        HookedModule(build(), ["features.4"], "small")


def test_compare_model_returns_dataframes_that_concatenate(tmp_path: Path) -> None:
    recordings = small_recordings()
    torch.manual_seed(0)
    report = compare_model(build(), ["1", "4"], recordings, label="small-cnn",
                           preprocess=Preprocess(16, 16), options=FAST)
    rsa = report.tables["rsa"]
    assert isinstance(rsa, pd.DataFrame) and list(rsa.columns[:2]) == ["model", "region"]
    assert set(rsa["model"]) == {"small-cnn"} and set(rsa["population"]) == {"1", "4"}
    assert not rsa["ir_mapped"].any()  # a module without an IR maps no population
    assert report.output_dir is None and report.files == {}
    best = report.tables["rsa_best"]
    assert len(best) == 3 and set(best["ir_population"]) == {""}
    rdms = report.rdms()
    assert rdms["model"].dims == ("population", "image", "image2")
    assert rdms["neural"].sizes["region"] == 3

    other = wrap_module(build(), ["4"], label="other", preprocess=Preprocess(16, 16))
    again = run_rsa(other, recordings, tmp_path / "out", options=FAST)
    both = pd.concat([report.tables["rsa_best"], again.tables["rsa_best"]])
    assert set(both["model"]) == {"small-cnn", "other"} and len(both) == 6
    header = (tmp_path / "out" / "rsa_best.csv").read_text().splitlines()[0]
    assert header.startswith("model,region,")


def test_cli_scores_a_module_from_a_factory_and_a_weights_file(tmp_path: Path, capsys) -> None:
    recordings = tmp_path / "rec.npz"
    save_recordings(small_recordings(), recordings)
    torch.manual_seed(1)
    weights = tmp_path / "small.pth"
    torch.save(build().state_dict(), weights)
    common = ["--recordings", str(recordings), "--bootstrap", "3", "--splits", "2",
              "--regressions", "none", "--methods", "spearman"]
    status = main(["rsa", "--model", "module:tests.neuro.small_models:build", "--layers",
                   "1,4", "--input-size", "16,16", "--weights", str(weights),
                   "-o", str(tmp_path / "out"), *common])
    printed = capsys.readouterr()
    assert status == 0, printed.err
    # a baseline maps no population to a region: no "IR population" columns of "-" and nan
    assert "IR population" not in printed.out and "nan" not in printed.out
    assert " to " in printed.out.splitlines()[2]  # noise ceiling "0.412 to 0.803"
    table = pd.read_csv(tmp_path / "out" / "rsa.csv")
    assert set(table["model"]) == {"build"} and set(table["population"].astype(str)) == \
        {"1", "4"}

    torch.save({"0.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    status = main(["rsa", "--model", "module:tests.neuro.small_models:build", "--layers", "1",
                   "--weights", str(tmp_path / "wrong.pth"), "-o", str(tmp_path / "o2"),
                   *common])
    error = capsys.readouterr().err
    assert status == 2 and "wrong.pth: the state dict lacks '0.bias'" in error
    assert "Traceback" not in error
    status = main(["rsa", "--model", "module:tests.neuro.small_models:build", "--weights",
                   "untrained", "-o", str(tmp_path / "o3"), *common])
    assert status == 2 and "--layers" in capsys.readouterr().err


def test_weights_file_must_hold_tensors(tmp_path: Path) -> None:
    (tmp_path / "note.pth").write_bytes(b"not a torch file")
    with pytest.raises(UserFileError, match="not a readable torch weights file"):
        load_weights(build(), tmp_path / "note.pth")


def test_torchvision_is_optional_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_torchvision(name: str, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError("No module named 'torchvision'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_torchvision)
    monkeypatch.delitem(__import__("sys").modules, "torchvision", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "torchvision.models", raising=False)
    with pytest.raises(UserFileError, match="torchvision is not installed.*pip install"):
        build_module("torchvision:vgg16")


def test_torchvision_model_when_installed() -> None:
    pytest.importorskip("torchvision")
    module = build_module("torchvision:alexnet")
    hooked = HookedModule(module, ["features.1", "features.4"])
    out = hooked.features(torch.from_numpy(Preprocess(64, 64)(
        np.zeros((2, 20, 20), dtype=np.uint8))))
    assert out["features.1"].shape[0] == 2


def test_torchvision_names_select_a_builder_called_without_weights(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    calls: list[Any] = []

    def alexnet(weights: Any = "default") -> Any:
        calls.append(weights)
        return build()

    models = types.ModuleType("torchvision.models")
    models.alexnet = alexnet  # type: ignore[attr-defined]
    package = types.ModuleType("torchvision")
    package.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    assert isinstance(build_module("torchvision:alexnet"), torch.nn.Sequential)
    assert calls == [None]  # never the pretrained default (that would download)
    with pytest.raises(UserFileError, match="torchvision.models has no model builder 'vgg99'"):
        build_module("torchvision:vgg99")
