"""Every user mistake: one message naming file, line, column, field and what was expected."""

from __future__ import annotations

import pytest

from mnc.compiler import compile_ir
from mnc.errors import SpecError
from tests.conftest import DEFAULT_SPEC


def problems_of(path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        compile_ir(path)
    return [str(problem) for problem in caught.value.problems]


def base_text() -> str:
    return DEFAULT_SPEC.read_text()


def test_wrong_type_names_file_line_column_and_field(tmp_path):
    text = base_text().replace("  channels: 3\n", "  channels: three\n", 1)
    path = tmp_path / "typed.yaml"
    path.write_text(text)
    line = text.splitlines().index("  channels: three") + 1
    [message] = problems_of(path)
    assert message.startswith(f"{path}:{line}:3: input.channels: expected a whole number")
    assert "'three'" in message


def test_unknown_field_suggests_the_right_one(write_variant):
    [message] = problems_of(write_variant({"kernel": {"edge_zz": 2}}))
    assert "kernel.edge_zz: unknown field 'edge_zz' (did you mean 'edge_z'?)" in message


def test_missing_field_is_reported(tmp_path):
    text = base_text().replace("  classes: 1000\n", "")
    path = tmp_path / "missing.yaml"
    path.write_text(text)
    [message] = problems_of(path)
    assert "readout.classes: required field is missing" in message


def test_non_positive_count(write_variant):
    [message] = problems_of(write_variant({"neurons": {"counts": {"VISl": {"4": 0}}}}))
    assert "neurons.counts.VISl.4: expected a number >= 1, got 0" in message


def test_several_mistakes_reported_together(write_variant):
    messages = problems_of(
        write_variant(
            {
                "neurons": {"counts": {"VISl": {"4": -5}}},
                "kernel": {"edge_z": "wide"},
                "mask": {"mode": "random"},
            }
        )
    )
    assert len(messages) == 3
    joined = "\n".join(messages)
    assert "neurons.counts.VISl.4" in joined and "kernel.edge_z" in joined
    assert "mask.mode" in joined and "gaussian" in joined


def test_unknown_population_in_projection_with_suggestion(write_variant):
    path = write_variant(
        {"interareal": {"projections": {"VISp4->VISll4": {"strength": 0.2, "sigma_mm": 0.3}}}}
    )
    [message] = problems_of(path)
    assert "interareal.projections.VISp4->VISll4" in message
    assert "unknown population 'VISll4' (did you mean 'VISl4'?)" in message
    assert f"{path}:" in message


def test_feedback_without_delay_is_reported(write_variant):
    path = write_variant(
        {"interareal": {"projections": {"VISpor5->VISp4": {"strength": 1.0, "sigma_mm": 0.1}}}}
    )
    [message] = problems_of(path)
    assert f"{path}:" in message
    assert "interareal.projections.VISpor5->VISp4.delay: VISpor5->VISp4 is feedback" in message
    assert "delay >= 1" in message


def test_population_left_without_input(write_variant):
    messages = problems_of(
        write_variant({"areas": {"regions": {"VISp": None}}, "readout": {"populations": ["VISl5"]}})
    )
    joined = "\n".join(messages)
    assert "VISl4 has no input" in joined


def test_unknown_readout_population(write_variant):
    [message] = problems_of(write_variant({"readout": {"populations": ["VISp5", "VISq5"]}}))
    assert "readout.populations[1]" in message and "did you mean 'VISp5'" in message


def test_grid_that_does_not_divide(write_variant):
    messages = problems_of(write_variant({"input": {"height_px": 63, "width_px": 63}}))
    assert len(messages) == 6  # one per half-resolution area, not one per population
    assert all("not a whole number of pixels" in message for message in messages)
    assert any("areas.regions.VISl.pixels_per_degree" in message for message in messages)


def test_zero_channel_population_names_numbers(write_variant):
    [message] = problems_of(write_variant({"neurons": {"counts": {"VISpl": {"4": 1000}}}}))
    assert "VISpl4 would have 0 channels" in message and "1000" in message
    assert "neurons.counts.VISpl.4" in message


def test_mistake_in_base_file_points_at_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(base_text().replace("  edge_z: 1\n", "  edge_z: -1\n"))
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\n")
    [message] = problems_of(child)
    assert message.startswith(f"{base}:") and "kernel.edge_z" in message


def test_extends_cycle_and_missing_base(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("extends: b.yaml\n")
    second.write_text("extends: a.yaml\n")
    [message] = problems_of(first)
    assert "cycle" in message
    lonely = tmp_path / "c.yaml"
    lonely.write_text("extends: nowhere.yaml\n")
    [message] = problems_of(lonely)
    assert "nowhere.yaml" in message and "not found" in message
