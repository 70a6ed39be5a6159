"""How every number of a population or projection was derived: formula, inputs, sources."""

from __future__ import annotations

from typing import Any

from mnc.errors import UsageError
from mnc.ir.model import IR, Derivation
from mnc.text import suggest


def explain(ir: IR, name: str) -> dict[str, Any]:
    """Structured explanation of a population ("VISp4") or projection ("VISp2/3->VISl4")."""
    if "->" in name:
        names = [projection.name for projection in ir.projections]
        if name not in names:
            raise UsageError(f"no projection {name!r} in {ir.name}{suggest(name, names)}")
        projection = ir.projection(name)
        fields = {
            key: getattr(projection, key)
            for key in (
                "source",
                "target",
                "in_channels",
                "out_channels",
                "kernel_size",
                "stride",
                "padding_lrtb",
                "peak_probability",
                "sigma_px",
            )
        }
        fields["padding_lrtb"] = list(projection.padding_lrtb)
        return {
            "kind": "projection",
            "name": name,
            "profile": projection.profile.kind,
            "fields": fields,
            "derivations": _derivations(ir, projection.derivations),
            "measured": projection.profile.model_dump(exclude={"kind"}),
        }
    names = ir.population_names()
    if name not in names:
        raise UsageError(f"no population {name!r} in {ir.name}{suggest(name, names)}")
    population = ir.population(name)
    fields = {
        key: getattr(population, key)
        for key in ("area", "layer", "neurons", "surface_area_mm2", "channels", "height", "width")
    }
    return {
        "kind": "population",
        "name": name,
        "fields": fields,
        "derivations": _derivations(ir, population.derivations),
        "inputs": [q.name for q in ir.projections if q.target == name],
        "outputs": [q.name for q in ir.projections if q.source == name],
        "sources": {key: ir.provenance.sources[key] for key in _population_sources(ir, name)},
    }


def _population_sources(ir: IR, name: str) -> list[str]:
    keys = ["neurons", "areas", "surface_area_mm2", f"surface_area_mm2.{name}"]
    return [key for key in keys if key in ir.provenance.sources]


def _derivations(ir: IR, derivations: dict[str, Derivation]) -> list[dict[str, Any]]:
    result = []
    for field, derivation in derivations.items():
        result.append(
            {
                "field": field,
                "value": derivation.value,
                "formula": derivation.formula,
                "inputs": derivation.inputs,
                "sources": {key: ir.provenance.sources.get(key, "") for key in derivation.sources},
            }
        )
    return result


def render_explanation(explanation: dict[str, Any]) -> str:
    lines = [f"{explanation['kind']} {explanation['name']}"]
    if explanation["kind"] == "projection":
        lines[0] += f" ({explanation['profile']} profile)"
    for key, value in explanation["fields"].items():
        lines.append(f"  {key:<17} {_show(value)}")
    if explanation["kind"] == "projection":
        lines.append("  measured inputs:")
        for key, value in explanation["measured"].items():
            lines.append(f"    {key:<26} {_show(value)}")
    lines.append("  derivation:")
    cited: dict[str, str] = {}
    for step in explanation["derivations"]:
        lines.append(f"    {step['field']} = {_show(step['value'])}")
        lines.append(f"      formula: {step['formula']}")
        inputs = ", ".join(f"{key}={_show(value)}" for key, value in step["inputs"].items())
        lines.append(f"      with:    {inputs}")
        if step["sources"]:
            lines.append(f"      sources: {', '.join(step['sources'])}")
        cited.update(step["sources"])
    if explanation["kind"] == "population":
        cited.update(explanation["sources"])
        lines.append(f"  inputs:  {', '.join(explanation['inputs']) or '(the image)'}")
        lines.append(f"  outputs: {', '.join(explanation['outputs']) or '-'}")
    if cited:
        lines.append("  sources cited:")
        for key, text in cited.items():
            lines.append(f"    [{key}] {text}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return str(value)
