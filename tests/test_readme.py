"""The examples of the README and the guides in docs/ run as written and write only into
scratch folders; the README's links reach the guides."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
GUIDES = {path.name: path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))}
PAGES = {"README.md": README, **GUIDES}
SCRATCH = ("out/", "runs/", "/tmp/", "~/")
PLACEHOLDER = re.compile(r"\b(DIR|FILE|SPEC|RUN|OUT)\b")


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def _command_lines(text: str) -> list[str]:
    """``mnc`` command lines in code: fenced bash blocks and indented blocks."""
    text = text.replace("\\\n", " ")  # a trailing backslash continues the command
    lines = [line for block in _blocks(text, "bash") for line in block.splitlines()]
    lines += [line[4:] for line in text.splitlines() if line.startswith("    mnc ")]
    return [line.split("  #")[0].strip() for line in lines
            if line.strip().startswith(("mnc ", "torchrun "))]


def _all_command_lines() -> list[str]:
    return [line for text in PAGES.values() for line in _command_lines(text)]


def test_command_examples_write_only_into_scratch_folders():
    written = []
    for line in _all_command_lines():
        words = shlex.split(line)
        for flag in ("-o", "--output"):
            if flag in words:
                written.append((line, words[words.index(flag) + 1]))
    assert written
    stray = [(line, path) for line, path in written
             if not path.startswith(SCRATCH) and not PLACEHOLDER.search(line)]
    assert not stray, f"README commands that write into the current folder: {stray}"


def test_the_readme_links_reach_the_guides():
    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert len(links) >= 10
    assert [link for link in links if not (ROOT / link).is_file()] == []
    assert {Path(link).name for link in links} >= set(GUIDES) - {"index.md"}


@pytest.mark.parametrize(("page", "title"), [("README.md", "A first example"),
                                             ("python-api.md", "Using the PyTorch model")])
def test_first_python_example_runs_as_written(monkeypatch, tmp_path, page, title):
    torch = pytest.importorskip("torch")
    section = _section(PAGES[page], title) if title else PAGES[page]
    code = re.search(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), page, "exec"), namespace)  # noqa: S102 - our own docs
    model, logits = namespace["model"], namespace["logits"]
    assert isinstance(logits, torch.Tensor) and logits.shape == (8, 1000)
    assert not model.training and not logits.requires_grad  # type: ignore[attr-defined]
    assert set(namespace["acts"]) == {"VISp5", "VISl2/3"}  # type: ignore[arg-type]


def test_emit_python_example_writes_into_out(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from mnc.cli.main import main

    line = next(line for line in _command_lines(GUIDES["python-api.md"])
                if "--emit python" in line)
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(line)[1:]) == 0
    written = Path(shlex.split(line)[-1])
    assert written.parts[0] == "out" and (tmp_path / written).is_file()


def test_recurrent_python_example_runs_as_written(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    import mnc

    section = _section(GUIDES["recurrence.md"], "In Python")
    code = re.search(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"torch": torch, "mnc": mnc}  # imported by the first example
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: more threads only contend on a busy machine
    try:
        exec(compile(code.group(1), "recurrence.md", "exec"), namespace)  # noqa: S102 - ours
    finally:
        torch.set_num_threads(threads)
    logits, acts = namespace["logits"], namespace["acts"]
    assert logits.shape == (8, 10)  # type: ignore[attr-defined]
    assert acts["VISp2/3"].shape[:2] == (8, 3)  # type: ignore[index]


INVOCATION = re.compile(r"(?<![\w.\[/-])mnc ((?:--verbose )?)([a-z][a-z-]*)(?![\w:-])([^`\n]*)")
FLAG = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def _invocations() -> list[tuple[str, str, list[str]]]:
    """Every ``mnc COMMAND ...`` the README and the guides show in code (fenced blocks,
    indented blocks and inline spans): (the text, the command, the flags given to it)."""
    return [found for page in PAGES.values() for found in _page_invocations(page)]


def _page_invocations(page: str) -> list[tuple[str, str, list[str]]]:
    text = page.replace("\\\n", " ")
    code = [line for line in text.splitlines() if line.startswith(("    ", "$ "))]
    code += [line for block in re.findall(r"^```\w*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
             for line in block.splitlines()]
    code += re.findall(r"`([^`\n]*\bmnc [^`\n]*)`", text)
    found = []
    for line in code:
        for match in INVOCATION.finditer(line.split(" #")[0]):
            rest = re.split(r"\s(?:&&|\||;)\s|\s/\s", match.group(3))[0]
            found.append((match.group(0), match.group(2), FLAG.findall(rest)))
    return found


def test_every_command_and_flag_the_docs_show_exists():
    from mnc.cli.main import COMMANDS, build_parser

    invocations = _invocations()
    assert len({command for _, command, _ in invocations}) >= 15  # the reader found them
    unknown = []
    for text, command, flags in invocations:
        if command not in COMMANDS:
            unknown.append(f"{text}: no command {command!r}")
            continue
        argv = [command, *(flag for flag in flags if flag != "--backend")]
        parser = build_parser(command, argv)
        sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        actions = [*sub._actions, *parser._actions]
        nested = [action for action in sub._actions
                  if isinstance(action, argparse._SubParsersAction)]
        words = text.split()[text.split().index(command) + 1:]
        if nested and words:  # mnc measure connectome|surface ...
            names = [name for name in words[0].split("\\|") if name in nested[0].choices]
            if not names:
                unknown.append(f"{text}: {command} has no {words[0]!r}")
            actions += [action for name in names for action in nested[0].choices[name]._actions]
        known = {option for action in actions for option in action.option_strings}
        unknown += [f"{text}: {command} has no {flag}" for flag in flags if flag not in known]
    assert not unknown, "\n".join(unknown)


@pytest.mark.slow
def test_python_api_example_runs_as_written(monkeypatch, tmp_path):
    torch = pytest.importorskip("torch")
    section = GUIDES["python-api.md"].split("\n## Using the PyTorch model\n")[0]
    code = re.search(r"^```python\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exec(compile(code.group(1), "python-api.md", "exec"), namespace)  # noqa: S102 - ours
    finally:
        torch.set_num_threads(threads)
    assert isinstance(namespace["model"], torch.nn.Module)
    assert set(namespace["result"]) >= {"top1", "top5", "loss"}  # type: ignore[arg-type]
    assert (tmp_path / "tiny.pt").is_file()
