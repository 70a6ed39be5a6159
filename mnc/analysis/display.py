"""Short views of an IR for the Python prompt and notebooks: a few text lines and an HTML table.

``repr(ir)`` and ``str(ir)`` give the text (name, content hash, sizes, cost); Jupyter shows
the HTML (one row per population: area, layer, channels, grid, parameters, MACs). Costs come
from ``mnc.analysis.cost``, the figures ``mnc summary`` prints; a recurrent IR adds a line on
its steps and recurrent projections, and its MACs are per step and per image.
"""

from __future__ import annotations

import html
from typing import Any

from mnc.analysis.cost import network_cost, population_totals
from mnc.analysis.recurrence import describe_recurrence
from mnc.text import PROBABILITY_CAP, human_count, peak_probability_text


def ir_text(ir: Any) -> str:
    """A few lines about a resolved ``IR`` or a ``DraftIR`` (whose sizes are not derived yet)."""
    from mnc.ir.model import IR

    shape = f"{ir.input.channels}x{ir.input.height}x{ir.input.width}"
    counts = (f"input {shape}, {len(ir.populations)} populations, "
              f"{len(ir.projections)} projections, mask {ir.mask.mode} (seed {ir.mask.seed})")
    readout = (f"readout: {len(ir.readout.populations)} populations -> "
               f"{ir.readout.classes} classes")
    if not isinstance(ir, IR):
        return f"DraftIR {ir.name!r} (derived sizes not filled in yet)\n  {counts}\n  {readout}"
    cost = network_cost(ir)
    header = f"IR {ir.name!r} (content hash {ir.short_hash})\n  {counts}\n"
    readout += _capped_line(ir)
    if not ir.is_recurrent:
        return (f"{header}  {cost.parameters:,} parameters; {human_count(cost.dense_macs)} "
                f"dense, {human_count(cost.masked_macs)} masked MACs per image\n  {readout}")
    return (f"{header}  time: {describe_recurrence(ir)}\n"
            f"  {cost.parameters:,} parameters; {human_count(cost.dense_macs)} dense, "
            f"{human_count(cost.masked_macs)} masked MACs per step, "
            f"{human_count(cost.masked_macs_total)} masked per image\n  {readout}")


def _capped_line(ir: Any) -> str:
    """A line naming the projections whose peak probability is above 1 (capped there)."""
    capped = [q for q in ir.projections if q.peak_probability > PROBABILITY_CAP]
    if not capped:
        return ""
    highest = max(capped, key=lambda q: q.peak_probability)
    return (f"; peak probability capped at {PROBABILITY_CAP:g} in {len(capped)} "
            f"projection(s), e.g. {highest.name} {peak_probability_text(highest.peak_probability)}")


def ir_html(ir: Any) -> str:
    """The text header and a table of populations, for Jupyter's rich display."""
    cost = network_cost(ir)
    totals = {total.name: total for total in population_totals(ir, cost)}
    per = " / step" if ir.is_recurrent else ""
    header = "".join(f"<th>{name}</th>" for name in (
        "population", "area", "layer", "channels", "grid", "params", f"dense MACs{per}",
        f"masked MACs{per}"))
    rows = []
    for population in ir.populations:
        total = totals[population.name]
        cells = [population.name, population.area, population.layer or "-", population.channels,
                 f"{population.height}x{population.width}", f"{total.parameters:,}",
                 human_count(total.dense_macs), human_count(total.masked_macs)]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells)
                    + "</tr>")
    lines = ir_text(ir).splitlines()
    caption = "<br>".join(html.escape(line.strip()) for line in lines)
    return (f"<div><p>{caption}</p><table><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            f"<p>classifier: {cost.classifier_parameters:,} parameters</p></div>")
