"""Backend options: each backend's pydantic model becomes its `mnc compile` flags, a plug-in
gets flags without touching mnc, and two packages claiming one backend name are reported."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

import mnc.backend
from mnc.backend import ENTRY_POINT_GROUP, Backend, BackendOptions, read_options
from mnc.cli.main import main
from mnc.errors import BackendError
from mnc.ir.model import IR
from tests.conftest import TINY_SPEC

RECEIVED: list[Any] = []


class ToyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    colour: Literal["red", "blue"] = "blue"
    """colour of the toy artifact"""
    repeat_count: int = Field(default=1, ge=1)
    """how often to repeat it"""


class ToyBackend(Backend):
    name: ClassVar[str] = "toy"
    description: ClassVar[str] = "a plug-in backend for tests"
    suffix: ClassVar[str] = ".toy"
    options_model: ClassVar[type[BaseModel]] = ToyOptions

    def compile(self, ir: IR, options: BackendOptions) -> str:
        settings = read_options(ToyOptions, options, self.name)
        RECEIVED.append(settings)
        return settings.colour * settings.repeat_count

    def save(self, artifact: Any, path: Path, options: BackendOptions) -> None:
        path.write_text(artifact)


def _clear_caches() -> None:
    for cached in (mnc.backend._entry_points, mnc.backend.backend_class, mnc.backend.get_backend):
        cached.cache_clear()


@pytest.fixture
def installed(monkeypatch):
    """Install extra entry points (besides the real ones) for one test."""
    real = list(mnc.backend.entry_points(group=ENTRY_POINT_GROUP))

    def install(*points: Any) -> None:
        monkeypatch.setattr(mnc.backend, "entry_points", lambda group: [*real, *points])
        _clear_caches()

    yield install
    _clear_caches()


def _toy_point() -> EntryPoint:
    return EntryPoint(name="toy", value=f"{__name__}:ToyBackend", group=ENTRY_POINT_GROUP)


def test_a_plug_in_backend_gets_flags_from_its_options_model(installed, capsys):
    installed(_toy_point())
    with pytest.raises(SystemExit) as help_exit:
        main(["compile", str(TINY_SPEC), "--backend", "toy", "--help"])
    shown = capsys.readouterr().out
    assert help_exit.value.code == 0
    assert "options of the toy backend" in shown
    assert "--colour {red,blue}" in shown and "colour of the toy artifact" in shown
    assert "--repeat-count REPEAT_COUNT" in shown and "(default: 1)" in shown
    RECEIVED.clear()
    assert main(["compile", str(TINY_SPEC), "--backend", "toy", "--colour", "red",
                 "--repeat-count", "3"]) == 0
    assert RECEIVED == [ToyOptions(colour="red", repeat_count=3)]
    assert "toy: str" in capsys.readouterr().out


def test_a_bad_plug_in_option_is_one_message_naming_the_flag(installed, capsys):
    installed(_toy_point())
    assert main(["compile", str(TINY_SPEC), "--backend", "toy", "--repeat-count", "0"]) == 2
    err = capsys.readouterr().err
    assert "--repeat-count" in err and "greater than or equal to 1" in err
    assert "Traceback" not in err


def test_an_option_of_another_backend_says_whose_it_is(tmp_path, capsys):
    pytest.importorskip("onnx", reason="--class-names belongs to the onnx backend (onnx extra)")
    names = tmp_path / "names.txt"
    names.write_text("a\n")
    assert main(["compile", str(TINY_SPEC), "--class-names", str(names)]) == 2
    err = capsys.readouterr().err
    assert "--class-names is an option of the onnx backend" in err and "--backend onnx" in err


def test_two_packages_claiming_one_name_are_reported(installed):
    def point(distribution: str, target: str) -> SimpleNamespace:
        return SimpleNamespace(name="toy", value=target, dist=SimpleNamespace(name=distribution),
                               load=lambda: ToyBackend)

    installed(point("toy-one", "toy_one:Backend"), point("toy-two", "toy_two:Backend"))
    with pytest.warns(UserWarning) as caught:
        mnc.backend.backend_names()
    message = str(caught[0].message)
    assert "'toy'" in message and "toy-one" in message and "toy-two" in message
    assert "toy_one:Backend" in message and "toy_two:Backend" in message


def test_a_backend_without_load_says_it_cannot_load(tmp_path):
    with pytest.raises(BackendError, match="the toy backend cannot load"):
        ToyBackend().load(tmp_path / "x.toy")


def test_building_the_compile_parser_imports_no_backend():
    code = ("import sys; from mnc.cli.main import build_parser; "
            "build_parser('compile', ['compile', 'tiny', '--emit', 'ir']); "
            "print(sorted(m for m in sys.modules if m.startswith(('mnc_backends', 'torch', "
            "'onnx'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
