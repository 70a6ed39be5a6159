"""``mnc completion bash|zsh|fish``: scripts generated from the parser, so every command and
flag this version has completes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mnc.cli.main import COMMAND_PARSERS, COMMANDS, build_parser, main
from mnc.spec.shipped import shipped_specs


def _script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def _rsa_flags() -> list[str]:
    build_parser("rsa")
    return [
        option
        for action in COMMAND_PARSERS["rsa"]._actions  # noqa: SLF001
        for option in action.option_strings
    ]


def test_the_bash_script_lists_every_command_and_the_flags_of_rsa(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _script("bash", capsys)
    names = next(line for line in text.splitlines() if "local commands=" in line)
    assert set(names.split('"')[1].split()) == set(COMMANDS)
    rsa = text.split('"rsa")')[1].split(";;")[0]
    flags = set(rsa.split('flags="')[1].split('"')[0].split())
    assert set(_rsa_flags()) <= flags and {"--config", "--boc-cache", "-o"} <= flags
    assert all(name in text for name in shipped_specs())


def test_zsh_and_fish_scripts_cover_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert "bashcompinit" in _script("zsh", capsys)
    fish = _script("fish", capsys)
    for name in COMMANDS:
        assert f"'__fish_use_subcommand' -a {name} " in fish
    assert "__fish_seen_subcommand_from rsa' -l normalize -x -a 'imagenet none'" in fish


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_accepts_the_script_and_completes_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "mnc.bash"
    script.write_text(_script("bash", capsys), encoding="utf-8")
    subprocess.run(["bash", "-n", str(script)], check=True)
    probe = (
        f"source {script}\n"
        't() { COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); COMPREPLY=(); _mnc; '
        'echo "${COMPREPLY[*]}"; }\n'
        "t mnc ph\n"
        "t mnc rsa --norm\n"
        't mnc rsa --normalize ""\n'
        "t mnc rsa tin\n"
        't mnc measure ""\n'
    )
    lines = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout.splitlines()
    assert lines == [
        "physiology",
        "--normalize",
        "imagenet none",
        " ".join(name for name in shipped_specs() if name.startswith("tin")),
        "connectome surface",
    ]


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["completion", "tcsh"])
    assert stop.value.code == 2 and "invalid choice: 'tcsh'" in capsys.readouterr().err
