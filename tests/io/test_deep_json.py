"""JSON nested thousands of levels deep (IR files, the IR inside a checkpoint, metrics logs,
structure trees) is one message naming the file, not a RecursionError."""

from __future__ import annotations

import pytest

from mnc.errors import UserFileError

DEEP = "[" * 200_000 + "]" * 200_000


def test_deep_ir_json_is_one_message():
    from mnc.ir.serialize import ir_from_json

    with pytest.raises(UserFileError, match="deep.json.*nested too deeply"):
        ir_from_json(DEEP, "deep.json")


def test_deep_ir_inside_a_checkpoint_is_one_message():
    pytest.importorskip("torch")
    from mnc_backends.torch.training.model import ir_of

    with pytest.raises(UserFileError, match="last.pt.*nested too deeply"):
        ir_of({"ir_json": DEEP}, "run/last.pt")


def test_deep_metrics_line_is_one_message(tmp_path):
    pytest.importorskip("torch")
    from mnc_backends.torch.training.rundir import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n' + DEEP + "\n")
    with pytest.raises(UserFileError, match=r"metrics.jsonl:2.*nested too deeply"):
        read_metrics(tmp_path)


def test_deep_structure_tree_is_one_message(tmp_path):
    from mnc.measure.structures import StructureTree

    path = tmp_path / "structures.json"
    path.write_text(DEEP)
    with pytest.raises(UserFileError, match="structures.json.*nested too deeply"):
        StructureTree.from_json(path)


def test_structure_tree_from_an_endless_device_is_bounded():
    from mnc.measure.structures import StructureTree

    with pytest.raises(UserFileError, match="more than"):
        StructureTree.from_json("/dev/zero")


def test_checkpoint_index_is_read_with_a_bound_and_a_depth_check(tmp_path):
    from mnc.io.checkpoint_index import INDEX_JSON, read_index

    (tmp_path / INDEX_JSON).write_text(DEEP)
    with pytest.raises(UserFileError, match="nested too deeply"):
        read_index(tmp_path)
    (tmp_path / INDEX_JSON).unlink()
    (tmp_path / INDEX_JSON).symlink_to("/dev/zero")
    with pytest.raises(UserFileError, match=INDEX_JSON):  # refused, never read without end
        read_index(tmp_path)


def test_brain_observatory_table_from_an_endless_device_is_bounded(tmp_path):
    from mnc.neuro.sources.boc_tables import _read_json

    (tmp_path / "experiments.json").symlink_to("/dev/zero")
    with pytest.raises(UserFileError, match="more than"):
        _read_json(tmp_path / "experiments.json")
