"""How every number of a population or projection was derived: formula, inputs, sources."""

from __future__ import annotations

from typing import Any

from mnc.errors import UsageError
from mnc.ir.model import IR, Derivation, InterarealProfile, Projection
from mnc.text import PROBABILITY_CAP, suggest

PROJECTION_FIELDS = ("source", "target", "in_channels", "out_channels", "kernel_size", "stride",
                     "padding_lrtb", "peak_probability", "sigma_px", "delay", "upsample")
POPULATION_FIELDS = ("area", "layer", "neurons", "surface_area_mm2", "channels", "height",
                     "width")


def explain(ir: IR, name: str) -> dict[str, Any]:
    """Structured explanation of a population ("VISp4") or projection ("VISp2/3->VISl4")."""
    if "->" in name:
        return _explain_projection(ir, name)
    return _explain_population(ir, name)


def _explain_projection(ir: IR, name: str) -> dict[str, Any]:
    names = [projection.name for projection in ir.projections]
    if name not in names:
        raise UsageError(f"no projection {name!r} in {ir.name}{suggest(name, names)}")
    projection = ir.projection(name)
    fields = {key: getattr(projection, key) for key in PROJECTION_FIELDS}
    fields["padding_lrtb"] = list(projection.padding_lrtb)
    if projection.peak_probability > PROBABILITY_CAP:  # the mask uses min(1, ...)
        fields["peak_probability_capped_at"] = PROBABILITY_CAP
    return {
        "kind": "projection",
        "name": name,
        "profile": projection.profile.kind,
        "fields": fields,
        "derivations": _derivations(ir, projection.derivations),
        "measured": projection.profile.model_dump(exclude={"kind"}),
        "timing": _timing(ir, projection),
        "in_degree_split": _in_degree_split(ir, projection),
        "sources": {key: ir.provenance.sources[key]
                    for key in _projection_sources(ir, projection)},
    }


def _explain_population(ir: IR, name: str) -> dict[str, Any]:
    names = ir.population_names()
    if name not in names:
        raise UsageError(f"no population {name!r} in {ir.name}{suggest(name, names)}")
    population = ir.population(name)
    return {
        "kind": "population",
        "name": name,
        "fields": {key: getattr(population, key) for key in POPULATION_FIELDS},
        "derivations": _derivations(ir, population.derivations),
        "inputs": [q.name for q in ir.projections if q.target == name],
        "outputs": [q.name for q in ir.projections if q.source == name],
        "delays": {q.name: q.delay for q in ir.projections
                   if q.delay and name in (q.source, q.target)},
        "steps": ir.dynamics.steps,
        "sources": {key: ir.provenance.sources[key] for key in _population_sources(ir, name)},
    }


def _timing(ir: IR, projection: Projection) -> str:
    """When the projection's input arrives, in words."""
    steps = ir.dynamics.steps
    if projection.delay == 0:
        return (f"delay 0: {projection.target} at step t reads {projection.source} at the same "
                f"step t" + (f" (each of the {steps} steps)" if steps > 1 else ""))
    return (f"delay {projection.delay}: {projection.target} at step t reads {projection.source} "
            f"at step t - {projection.delay} (nothing before step {projection.delay}; the "
            f"network runs {steps} steps)")


def _in_degree_split(ir: IR, projection: Projection) -> dict[str, Any] | None:
    """How the target's extrinsic in-degree is shared among its interareal inputs in
    proportion to their measured strengths: by all of them alike, or, with a feedback share,
    by the delay-0 inputs (the whole in-degree) and the delayed ones (its feedback share)."""
    profile = projection.profile
    if not isinstance(profile, InterarealProfile):
        return None
    shares = []
    feedback_share = None
    for other in ir.projections:
        if other.target != projection.target or not isinstance(other.profile,
                                                               InterarealProfile):
            continue
        if other.profile.feedback_share is not None:
            feedback_share = other.profile.feedback_share
        shares.append({
            "projection": other.name,
            "delay": other.delay,
            "strength": other.profile.strength,
            "strength_total": other.profile.strength_total,
            "inputs": other.profile.inputs,
        })
    rule = ("each interareal input of the target, feed-forward or delayed, gets in_degree "
            "* strength / strength_total inputs; strength_total sums the strengths of all "
            "of them present in the model")
    if feedback_share is not None:
        rule = ("delay-0 inputs get in_degree * strength / strength_total (delay-0 strengths "
                "summed); delayed (feedback) inputs get in_degree * feedback_share * strength "
                "/ strength_total (delayed strengths summed), and start with feedback_share "
                "of the target's drive variance")
    return {
        "target": projection.target,
        "in_degree": profile.in_degree,
        "strength_total": profile.strength_total,
        "feedback_share": feedback_share,
        "rule": rule,
        "shares": shares,
    }


def _projection_sources(ir: IR, projection: Projection) -> list[str]:
    """Per-projection citations the spec gave (ASSUMED values, delays)."""
    keys = [f"{projection.profile.kind}.projections.{projection.name}"]
    if projection.profile.kind == "interlaminar":
        source, target = ir.population(projection.source), ir.population(projection.target)
        keys = [f"interlaminar.projections.{source.layer}->{target.layer}"]
    return [key for key in keys if key in ir.provenance.sources]


def _population_sources(ir: IR, name: str) -> list[str]:
    keys = ["neurons", "areas", "surface_area_mm2", f"surface_area_mm2.{name}",
            "dynamics.steps", "dynamics.input", "dynamics.readout"]
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
    lines += _field_lines(explanation["fields"])
    if explanation["kind"] == "projection":
        lines += _projection_lines(explanation)
    cited: dict[str, str] = {}
    lines += _derivation_lines(explanation["derivations"], cited)
    cited.update(explanation["sources"])
    if explanation["kind"] == "population":
        lines += _population_lines(explanation)
    if cited:
        lines.append("  sources cited:")
        lines += [f"    [{key}] {text}" for key, text in cited.items()]
    return "\n".join(lines)


def _field_lines(given: dict[str, Any]) -> list[str]:
    fields = dict(given)
    cap = fields.pop("peak_probability_capped_at", None)
    lines = []
    for key, value in fields.items():
        shown_value = _show(value)
        if key == "peak_probability" and cap is not None:
            shown_value += (f" (capped at {cap:g}: taps whose probability reaches {cap:g} are "
                            f"always kept)")
        lines.append(f"  {key:<17} {shown_value}")
    return lines


def _projection_lines(explanation: dict[str, Any]) -> list[str]:
    """When the input arrives, what was measured, and how the in-degree is shared."""
    lines = [f"  timing:           {explanation['timing']}", "  measured inputs:"]
    lines += [f"    {key:<26} {_show(value)}" for key, value in explanation["measured"].items()]
    split = explanation["in_degree_split"]
    if split is not None:
        lines += _in_degree_lines(split, explanation["name"])
    return lines


def _in_degree_lines(split: dict[str, Any], name: str) -> list[str]:
    share = split["feedback_share"]
    how = ("feed-forward and delayed alike" if share is None else
           f"delay-0 by strength; delayed (feedback) share {_show(share)} of it by "
           "strength")
    lines = [f"  in-degree of {split['target']} ({_show(split['in_degree'])}) "
             f"shared over its {len(split['shares'])} interareal input(s), {how}:"]
    for entry in split["shares"]:
        delay = f", delay {entry['delay']}" if entry["delay"] else ""
        mark = "  <-" if entry["projection"] == name else ""
        lines.append(f"    {entry['projection']:<22} strength "
                     f"{_show(entry['strength'])} / {_show(entry['strength_total'])}"
                     f" -> {entry['inputs']:.4g} inputs{delay}{mark}")
    return lines


def _derivation_lines(derivations: list[dict[str, Any]], cited: dict[str, str]) -> list[str]:
    """Each derived field with its formula and inputs; adds the sources they cite to
    ``cited``."""
    lines = ["  derivation:"]
    for step in derivations:
        lines.append(f"    {step['field']} = {_show(step['value'])}")
        lines.append(f"      formula: {step['formula']}")
        inputs = ", ".join(f"{key}={_show(value)}" for key, value in step["inputs"].items())
        lines.append(f"      with:    {inputs}")
        if step["sources"]:
            lines.append(f"      sources: {', '.join(step['sources'])}")
        cited.update(step["sources"])
    return lines


def _population_lines(explanation: dict[str, Any]) -> list[str]:
    """A population's inputs and outputs with their delays, and the steps it runs."""
    delays = explanation["delays"]

    def listed(names: list[str]) -> str:
        return ", ".join(f"{name} (delay {delays[name]})" if name in delays else name
                         for name in names)

    lines = [f"  inputs:  {listed(explanation['inputs']) or '(the image)'}",
             f"  outputs: {listed(explanation['outputs']) or '-'}"]
    if explanation["steps"] > 1:
        lines.append(f"  runs {explanation['steps']} steps; a delay-d input is read from "
                     "step t - d")
    return lines


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return str(value)
