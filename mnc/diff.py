"""Differences between the networks two IRs describe.

Time (recurrent networks): each projection's ``delay`` and ``upsample`` are compared like its
other fields, the ``dynamics`` (steps, input, readout steps) like the readout, and ``delays``
counts the recurrent projections gained (a new projection with a delay, or a delay set where
there was none), lost, and whose delay changed. MACs are per image (all steps of a run) and,
when either network is recurrent, per step too.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mnc.analysis.cost import network_cost
from mnc.ir.model import IR

POPULATION_FIELDS = ("channels", "height", "width", "neurons", "surface_area_mm2")
PROJECTION_FIELDS = (
    "in_channels",
    "out_channels",
    "kernel_size",
    "stride",
    "padding_lrtb",
    "peak_probability",
    "sigma_px",
    "delay",
    "upsample",
)
DYNAMICS_FIELDS = ("steps", "input", "readout_steps")


def _changes(before: Any, after: Any, fields: tuple[str, ...]) -> dict[str, list[Any]]:
    changed = {}
    for field in fields:
        old, new = (list(value) if isinstance(value, tuple) else value
                    for value in (getattr(before, field), getattr(after, field)))
        if isinstance(old, float) and isinstance(new, float):
            if abs(old - new) <= 1e-9 * max(abs(old), abs(new)):
                continue
        elif old == new:
            continue
        changed[field] = [old, new]
    return changed


def _compare(
    left: dict[str, Any], right: dict[str, Any], fields: tuple[str, ...]
) -> dict[str, Any]:
    changed = {}
    for name in left.keys() & right.keys():
        difference = _changes(left[name], right[name], fields)
        if difference:
            changed[name] = difference
    return {
        "added": [name for name in right if name not in left],
        "removed": [name for name in left if name not in right],
        "changed": {name: changed[name] for name in left if name in changed},
    }


def _dynamics(ir: IR) -> SimpleNamespace:
    """Readout steps as [first, last] of the range read, so ``None`` (the last step) equals
    the explicit last step."""
    readout = ir.dynamics.readout_range
    return SimpleNamespace(steps=ir.dynamics.steps, input=ir.dynamics.input,
                           readout_steps=[readout.start, readout.stop - 1])


def _delays(left: IR, right: IR) -> dict[str, list[str]]:
    """Recurrent projections (delay >= 1) gained, lost, and whose delay changed."""
    before = {q.name: q.delay for q in left.projections}
    after = {q.name: q.delay for q in right.projections}
    return {
        "added": [name for name, delay in after.items() if delay and not before.get(name)],
        "removed": [name for name, delay in before.items() if delay and not after.get(name)],
        "changed": [name for name, delay in after.items()
                    if delay and before.get(name) and before[name] != delay],
    }


def diff_ir(left: IR, right: IR) -> dict[str, Any]:
    left_cost, right_cost = network_cost(left), network_cost(right)
    totals = {}
    rows: list[tuple[str, Any, Any]] = [
        ("parameters", left_cost.parameters, right_cost.parameters)]
    if left.is_recurrent or right.is_recurrent:
        rows += [("dense_macs_per_step", left_cost.dense_macs, right_cost.dense_macs),
                 ("masked_macs_per_step", round(left_cost.masked_macs),
                  round(right_cost.masked_macs))]
    rows += [
        ("dense_macs_per_image", left_cost.dense_macs_total, right_cost.dense_macs_total),
        ("masked_macs_per_image", round(left_cost.masked_macs_total),
         round(right_cost.masked_macs_total)),
        ("activation_bytes_per_image", left_cost.activation_bytes_total,
         right_cost.activation_bytes_total),
    ]
    for key, old, new in rows:
        totals[key] = [old, new]
    readout = {}
    for field in ("populations", "pool_size", "classes", "features"):
        old, new = getattr(left.readout, field), getattr(right.readout, field)
        if old != new:
            readout[field] = [old, new]
    dynamics = _changes(_dynamics(left), _dynamics(right), DYNAMICS_FIELDS)
    return {
        "left": {"name": left.name, "content_hash": left.content_hash},
        "right": {"name": right.name, "content_hash": right.content_hash},
        "identical": left.content_hash == right.content_hash,
        "populations": _compare(
            {p.name: p for p in left.populations},
            {p.name: p for p in right.populations},
            POPULATION_FIELDS,
        ),
        "projections": _compare(
            {q.name: q for q in left.projections},
            {q.name: q for q in right.projections},
            PROJECTION_FIELDS,
        ),
        "readout": readout,
        "dynamics": dynamics,
        "delays": _delays(left, right),
        "totals": totals,
    }


def render_diff(difference: dict[str, Any]) -> str:
    left, right = difference["left"], difference["right"]
    lines = [
        f"--- {left['name']} ({left['content_hash'][:12]})",
        f"+++ {right['name']} ({right['content_hash'][:12]})",
    ]
    if difference["identical"]:
        lines.append("the two specs compile to the same network")
    for kind in ("populations", "projections"):
        section = difference[kind]
        for name in section["removed"]:
            lines.append(f"- {kind[:-1]} {name}")
        for name in section["added"]:
            lines.append(f"+ {kind[:-1]} {name}")
        for name, fields in section["changed"].items():
            changes = ", ".join(
                f"{field} {_show(old)} -> {_show(new)}" for field, (old, new) in fields.items()
            )
            lines.append(f"~ {kind[:-1]} {name}: {changes}")
    for field, (old, new) in difference["readout"].items():
        lines.append(f"~ readout {field}: {_show(old)} -> {_show(new)}")
    for field, (old, new) in difference["dynamics"].items():
        lines.append(f"~ dynamics {field}: {_show(old)} -> {_show(new)}")
    delays = difference["delays"]
    if any(delays.values()):
        lines.append(f"delays: {len(delays['added'])} added, {len(delays['removed'])} removed, "
                     f"{len(delays['changed'])} changed")
    lines.append("totals:")
    for key, (old, new) in difference["totals"].items():
        ratio = f" ({new / old:.3g}x)" if old else ""
        lines.append(f"  {key:<28} {old:>14,} -> {new:>14,}{ratio}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
