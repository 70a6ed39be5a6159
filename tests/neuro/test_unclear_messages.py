"""Mistakes that used to end in a traceback or a misleading message are one clear message:
negative seeds and NaN baselines, oversized .npy headers (without numpy's advice to trust
the file), factories that do not build a module, torchvision names that are not builders."""

from __future__ import annotations

import sys
import types
import zipfile
from pathlib import Path

import pytest

from mnc.errors import UserFileError
from mnc.neuro.any_model import build_module
from mnc.neuro.sources.recording_files import load_npz

pytestmark = pytest.mark.neuro


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--seed", "-1"), ("--baseline", "nan"), ("--baseline", "-0.5"), ("--window", "inf")],
)
def test_bad_numbers_are_refused_by_the_parser(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from mnc.cli.main import main

    with pytest.raises(SystemExit) as stop:
        main(
            [
                "rsa",
                "tiny",
                "--weights",
                "untrained",
                "--recordings",
                "r.npz",
                "-o",
                "out",
                flag,
                value,
            ]
        )
    assert stop.value.code == 2
    assert f"{flag}: expected" in capsys.readouterr().err


def test_an_oversized_npy_header_is_named_without_unsafe_advice(tmp_path: Path) -> None:
    path = tmp_path / "big-header.npz"
    header = b"\x93NUMPY\x01\x00" + (20000).to_bytes(2, "little") + b" " * 20000
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("images", "responses", "area", "layer"):
            archive.writestr(f"{name}.npy", header)
    with pytest.raises(UserFileError, match="header is larger") as error:
        load_npz(path)
    assert "allow_pickle" not in str(error.value)


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: object) -> None:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_a_factory_that_returns_no_module_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    _fake_module(monkeypatch, "fake_factories", make=lambda: {"not": "a module"})
    with pytest.raises(UserFileError, match="returned dict, not a torch.nn.Module"):
        build_module("module:fake_factories:make")


def test_torchvision_names_only_model_builders(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    called: list[str] = []
    _fake_module(monkeypatch, "torchvision")
    _fake_module(
        monkeypatch,
        "torchvision.models",
        list_models=lambda: ["tiny_net"],
        tiny_net=lambda weights=None: torch.nn.Linear(2, 2),
        download=lambda **kwargs: called.append("download"),
    )
    assert isinstance(build_module("torchvision:tiny_net"), torch.nn.Module)
    with pytest.raises(UserFileError, match="no model builder 'download'"):
        build_module("torchvision:download")
    assert called == []
