"""``mnc rsa --config FILE.yaml`` / ``mnc physiology --config``: the file's keys are the
flags' names with ``_``, bad files get one message, flags given on the command line win."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from mnc.cli.main import build_parser, main

pytestmark = pytest.mark.neuro
pytest.importorskip("pandas", reason="needs the neuro extra (pandas)")

FLAGS = (
    "tiny --weights untrained --recordings r.npz -o out --areas VISp,VISl --depths 175 "
    "--depths 275 --window 0.25 --step last --map-inhibitory --normalize none --min-cells 3"
).split()
CONFIG = """\
spec: tiny
weights: untrained
recordings: r.npz
output: out
areas: [VISp, VISl]
depths: [175, 275]
window: 0.25
step: last
map_inhibitory: true
normalize: none
min_cells: 3
"""


def _parse(command: str, *argv: str) -> dict:
    tokens = [command, *argv]
    values = vars(build_parser(command, tokens).parse_args(tokens))
    values.pop("config")
    return values


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "options.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "command,extra_flags,extra_config",
    [
        (
            "rsa",
            ["--methods", "pearson", "--regressions", "none", "--folds", "3"],
            "methods: pearson\nregressions: [none]\nfolds: 3\n",
        ),
        ("physiology", ["--skip-missing"], "skip_missing: true\n"),
    ],
)
def test_a_config_equal_to_the_flags_parses_the_same(
    tmp_path: Path, command: str, extra_flags: list[str], extra_config: str
) -> None:
    config = _write(tmp_path, CONFIG + extra_config)
    from_flags = _parse(command, *FLAGS, *extra_flags)
    assert _parse(command, "--config", str(config)) == from_flags
    assert _parse(command, f"--config={config}") == from_flags
    assert _parse(command, "--config", "elsewhere.yaml", "--conf", str(config)) == from_flags


def test_flags_on_the_command_line_override_the_file(tmp_path: Path) -> None:
    config = _write(tmp_path, CONFIG)
    values = _parse(
        "rsa",
        "--config",
        str(config),
        "--window",
        "1",
        "--areas",
        "VISal",
        "--boc-cache",
        "boc",
        "mouse",
    )
    assert values["window"] == 1.0
    assert values["areas"] == ["VISal"]  # replaced, not added to the file's list
    assert (values["boc_cache"], values["recordings"]) == ("boc", None)
    assert values["spec"] == "mouse"
    assert values["depths"] == [175, 275]  # not given: the file's


def test_the_config_can_come_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(CONFIG.encode())))
    assert _parse("physiology", "--config", "-") == _parse("physiology", *FLAGS)


@pytest.mark.parametrize(
    "text,line,key,expected",
    [
        ("weights: untrained\nfoo: 1\n", 2, "foo", "unknown option; expected one of: spec,"),
        ("weights: untrained\nmin_cells: 2.5\n", 2, "min_cells", "expected an int, got 2.5"),
        ("weights: untrained\nareas: VISp\ndownload: 1\n", 3, "download", "expected true or false"),
        ("weights: 3\n", 1, "weights", "expected text, got 3"),
        ("normalize: zscore\n", 1, "normalize", "expected one of imagenet, none"),
        ("methods: [kendall]\n", 1, "methods", "'kendall' is not one of spearman, pearson"),
        (
            "weights: untrained\nskip_missing: yes\n",
            2,
            "skip_missing",
            "'yes' is read by YAML 1.1 as a boolean",
        ),
        ("seed: 010\n", 1, "seed", "octal"),
        ("recordings: r.npz\nboc_cache: boc\n", 2, "boc_cache", "give recordings or boc_cache"),
    ],
)
def test_a_bad_config_gets_one_message_with_file_line_and_key(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    line: int,
    key: str,
    expected: str,
) -> None:
    config = _write(tmp_path, text)
    with pytest.raises(SystemExit) as stop:
        main(["rsa", "--config", str(config)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"mnc rsa: error: {config}:{line}:")
    assert f": {key}: " in err and expected in err
