"""IRs from files keep the invariants of compiled IRs, or are refused naming file and field.

The content hash is no protection (anyone can recompute it), so each test edits an IR,
recomputes its hash, and expects the invariant checker to name the edited field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mnc.compiler import compile_ir
from mnc.errors import UserFileError
from mnc.ir.invariants import ir_problems
from mnc.ir.model import IR
from mnc.ir.serialize import ir_from_dict, ir_from_json, ir_to_json
from tests.conftest import ALL_SPECS, TINY_SPEC

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def tiny() -> IR:
    return compile_ir(TINY_SPEC)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda path: path.stem)
def test_every_shipped_spec_compiles_to_an_ir_that_keeps_the_invariants(spec: Path):
    ir = compile_ir(spec)
    assert ir_problems(ir) == []
    assert ir_from_json(ir_to_json(ir)) == ir


def _projection(index: int, **fields: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["projections"][index].update(fields)

    return edit


def _population(index: int, **fields: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["populations"][index].update(fields)

    return edit


def _readout(**fields: Any) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["readout"].update(fields)

    return edit


def _swap_populations(data: dict[str, Any]) -> None:
    populations = data["populations"]
    populations[1], populations[2] = populations[2], populations[1]


def _duplicate_projection(data: dict[str, Any]) -> None:
    data["projections"].append(dict(data["projections"][3]))


def _duplicate_population(data: dict[str, Any]) -> None:
    data["populations"].append(dict(data["populations"][5]))


def _colliding_population(data: dict[str, Any]) -> None:
    """``VISp2_3`` beside ``VISp2/3``: both become the module key ``VISp2_3``."""
    names = [population["name"] for population in data["populations"]]
    original = data["populations"][names.index("VISp2/3")]
    data["populations"].append({**original, "name": "VISp2_3"})
    data["projections"].append({**data["projections"][names.index("VISp2/3")],
                                "source": "VISp4", "target": "VISp2_3"})
    for projection in data["projections"]:
        if projection["source"] == "VISp4" and projection["target"] == "VISp2_3":
            projection.update(in_channels=data["populations"][names.index("VISp4")]["channels"],
                              out_channels=original["channels"])


def _orphan_population(data: dict[str, Any]) -> None:
    data["populations"].append({**data["populations"][2], "name": "VISx4"})


def _unknown_target(data: dict[str, Any]) -> None:
    data["projections"][4]["target"] = "VISnowhere4"


EDITS: dict[str, tuple[Edit, str]] = {
    "negative padding": (_projection(12, padding_lrtb=[-20000000, 0, -20000000, 0]),
                         "projections[12].padding_lrtb"),
    "padding beyond the kernel": (_projection(12, padding_lrtb=[40, 40, 40, 40]),
                                  "projections[12].padding_lrtb"),
    "padding off the target grid": (_projection(0, padding_lrtb=[0, 2, 0, 2]),
                                    "projections[0].padding_lrtb"),
    "even kernel": (_projection(5, kernel_size=4), "projections[5].kernel_size"),
    "zero kernel": (_projection(5, kernel_size=0), "projections[5].kernel_size"),
    "zero stride": (_projection(6, stride=0), "projections[6].stride"),
    "wrong stride": (_projection(6, stride=3), "projections[6].padding_lrtb"),
    "zero in_channels": (_projection(7, in_channels=0), "projections[7].in_channels"),
    "in_channels off the source": (_projection(7, in_channels=5), "projections[7].in_channels"),
    "out_channels off the target": (_projection(7, out_channels=999),
                                    "projections[7].out_channels"),
    "zero sigma": (_projection(8, sigma_px=0.0), "projections[8].sigma_px"),
    "negative peak": (_projection(8, peak_probability=-0.5), "projections[8].peak_probability"),
    "unknown target": (_unknown_target, "projections[4].target"),
    "backwards projection": (_swap_populations, "does not run forward"),
    "duplicate projection": (_duplicate_projection, "repeats projections[3]"),
    "duplicate population": (_duplicate_population, "repeats populations[5]"),
    "module key collision": (_colliding_population, "share the module key 'VISp2_3'"),
    "population without input": (_orphan_population, "has no incoming projection"),
    "zero channels": (_population(3, channels=0), "populations[3].channels"),
    "zero grid": (_population(3, height=0), "populations[3].height"),
    "input population off the input": (_population(0, height=31), "populations[0]"),
    "unknown readout population": (_readout(populations=["VISnowhere5"]),
                                   "readout.populations[0]"),
    "zero pool": (_readout(pool_size=0), "readout.pool_size"),
    "zero classes": (_readout(classes=0), "readout.classes"),
    "features off the readout": (_readout(features=17), "readout.features"),
    "negative seed": (lambda data: data["mask"].update(seed=-1), "mask.seed"),
    "negative delay": (_projection(9, delay=-1), "projections[9].delay"),
    "delay beyond any run": (_projection(9, delay=10**9), "projections[9].delay"),
    "delay past the last step": (_projection(9, delay=1), "projections[9].delay"),
    "zero upsample": (_projection(9, upsample=0), "projections[9].upsample"),
    "huge upsample": (_projection(9, upsample=10**6), "projections[9].upsample"),
    "zero steps": (lambda data: data["dynamics"].update(steps=0), "dynamics.steps"),
    "negative readout step": (lambda data: data["dynamics"].update(readout_steps=[-1, 0]),
                              "dynamics.readout_steps[0]"),
}


def _edited(ir: IR, edit: Edit) -> dict[str, Any]:
    """The edited IR with its hash recomputed, as an attacker would; a value the IR models
    refuse has no hash to recompute, and a file may leave the hash out."""
    data = json.loads(ir_to_json(ir))
    edit(data)
    data.pop("content_hash")
    try:
        data["content_hash"] = IR.model_validate(data).content_hash
    except ValidationError:
        pass
    return data


@pytest.mark.parametrize("name", sorted(EDITS))
def test_edited_ir_with_a_recomputed_hash_is_refused_naming_the_field(tiny: IR, name: str):
    edit, field = EDITS[name]
    with pytest.raises(UserFileError) as caught:
        ir_from_dict(_edited(tiny, edit), "model.pt: ir_json")
    message = str(caught.value)
    assert message.startswith("model.pt: ir_json: not a valid mnc IR"), message
    assert field in message, message


def test_problems_are_listed_with_their_field_paths(tiny: IR):
    data = _edited(tiny, _projection(12, padding_lrtb=[-3, 0, -3, 0]))
    data.pop("content_hash")
    problems = ir_problems(IR.model_validate(data))
    assert {problem.field for problem in problems} == {"projections[12].padding_lrtb"}
