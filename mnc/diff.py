"""Differences between the networks two IRs describe."""

from __future__ import annotations

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
)


def _changes(before: Any, after: Any, fields: tuple[str, ...]) -> dict[str, list[Any]]:
    changed = {}
    for field in fields:
        old, new = getattr(before, field), getattr(after, field)
        if isinstance(old, tuple):
            old, new = list(old), list(new)
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


def diff_ir(left: IR, right: IR) -> dict[str, Any]:
    left_cost, right_cost = network_cost(left), network_cost(right)
    totals = {}
    for key, old, new in (
        ("parameters", left_cost.parameters, right_cost.parameters),
        ("dense_macs_per_image", left_cost.dense_macs, right_cost.dense_macs),
        ("masked_macs_per_image", round(left_cost.masked_macs), round(right_cost.masked_macs)),
        ("activation_bytes_per_image", left_cost.activation_bytes, right_cost.activation_bytes),
    ):
        totals[key] = [old, new]
    readout = {}
    for field in ("populations", "pool_size", "classes", "features"):
        old, new = getattr(left.readout, field), getattr(right.readout, field)
        if old != new:
            readout[field] = [old, new]
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
    lines.append("totals:")
    for key, (old, new) in difference["totals"].items():
        ratio = f" ({new / old:.3g}x)" if old else ""
        lines.append(f"  {key:<28} {old:>14,} -> {new:>14,}{ratio}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
