"""Text from recordings, Brain Observatory tables and paths never reaches the terminal raw:
area names with escape sequences are refused naming the field, NaN and Infinity in the
tables are one message (not a traceback), and messages print paths escaped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mnc.errors import UserFileError
from mnc.neuro.sources.allen import load_natural_scenes
from mnc.neuro.sources.recordings import NeuralData

pytestmark = pytest.mark.neuro

ESCAPE = "VISp\x1b[2J\x1b]0;owned\x07"


def test_an_area_name_with_escape_sequences_is_refused() -> None:
    with pytest.raises(UserFileError, match=r"recordings.npz: area\[1\]: .*control") as error:
        NeuralData.from_arrays(
            np.zeros((4, 3, 3)),
            np.zeros((4, 2, 2)),
            np.array(["VISp", ESCAPE]),
            layer=np.array(["L4", "L4"]),
            source="recordings.npz",
        )
    assert "\x1b" not in str(error.value)


@pytest.fixture
def cache(session_cache: Path) -> Path:
    return session_cache


def test_an_acronym_with_escape_sequences_is_refused(cache: Path) -> None:
    path = cache / "experiment_containers.json"
    records = json.loads(path.read_text())
    records[0]["targeted_structure"]["acronym"] = ESCAPE
    path.write_text(json.dumps(records))
    with pytest.raises(UserFileError, match="acronym.*control") as error:
        load_natural_scenes(cache)
    assert "\x1b" not in str(error.value)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_in_tables_are_one_message(cache: Path, value: str) -> None:
    path = cache / "ophys_experiments.json"
    text = json.dumps(json.loads(path.read_text()))
    depth = json.loads(path.read_text())[0]["imaging_depth"]
    path.write_text(text.replace(f'"imaging_depth": {depth}', f'"imaging_depth": {value}', 1))
    with pytest.raises(UserFileError, match=f"{path}.*(NaN|Infinity|imaging_depth)"):
        load_natural_scenes(cache)


def test_messages_of_commands_escape_the_paths_they_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mnc.cli.common import announce
    from mnc.cli.main import main

    output = tmp_path / "ir\x1b[31m.json"
    assert main(["compile", "tiny", "--emit", "ir", "-o", str(output)]) == 0
    announce("predict", f"{output} on 1 image(s)")
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "ir\\x1b[31m.json" in captured.out and "ir\\x1b[31m.json" in captured.err
