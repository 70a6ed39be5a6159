"""An IR with its costs, for the Python prompt and notebooks: ``cost_view(ir)``.

``repr(ir)`` shows only what the IR holds (name, content hash, sizes, mask, readout) and Jupyter
a table of its populations: costs are computed in this layer, above the IR, so the view with
them lives here. ``cost_view(ir)`` prints the same lines with the cost (parameters, MACs) and,
in Jupyter, the table with parameters and MACs per population. Costs come from
``mnc.analysis.cost``, the figures ``mnc summary`` prints; a recurrent IR adds a line on its
steps and recurrent projections, and its MACs are per step and per image.
"""

from __future__ import annotations

from dataclasses import dataclass

from mnc.analysis.cost import network_cost, population_totals
from mnc.analysis.recurrence import describe_recurrence
from mnc.ir.model import IR, POPULATION_COLUMNS, population_cells, summary_text
from mnc.text import html_view, human_count


@dataclass(frozen=True)
class CostView:
    """A resolved IR shown with its costs: the text at the prompt, a table in Jupyter."""

    ir: IR

    def __repr__(self) -> str:
        return ir_text(self.ir)

    def _repr_html_(self) -> str:
        return ir_html(self.ir)


def cost_view(ir: IR) -> CostView:
    """What to evaluate at the prompt or in a notebook to see ``ir`` with its costs."""
    if not isinstance(ir, IR):  # a draft or anything else has no derived sizes to cost
        raise TypeError(f"cost_view expects a resolved IR (mnc.compile_ir, model.ir), "
                        f"got {type(ir).__name__}")
    return CostView(ir)


def ir_text(ir: IR) -> str:
    """The IR's own lines with its cost (and, when it runs in time, its steps) added."""
    cost = network_cost(ir)
    if not ir.is_recurrent:
        return summary_text(ir, [
            f"{cost.parameters:,} parameters; {human_count(cost.dense_macs)} dense, "
            f"{human_count(cost.masked_macs)} masked MACs per image"])
    return summary_text(ir, [
        f"time: {describe_recurrence(ir)}",
        f"{cost.parameters:,} parameters; {human_count(cost.dense_macs)} dense, "
        f"{human_count(cost.masked_macs)} masked MACs per step, "
        f"{human_count(cost.masked_macs_total)} masked per image"])


def ir_html(ir: IR) -> str:
    """The text and the IR's table of populations with parameters and MACs added."""
    cost = network_cost(ir)
    totals = {total.name: total for total in population_totals(ir, cost)}
    per = " / step" if ir.is_recurrent else ""
    header = [*POPULATION_COLUMNS, "params", f"dense MACs{per}", f"masked MACs{per}"]
    rows = []
    for population in ir.populations:
        total = totals[population.name]
        rows.append([*population_cells(population), f"{total.parameters:,}",
                     human_count(total.dense_macs), human_count(total.masked_macs)])
    return html_view(ir_text(ir).splitlines(), header, rows,
                     footer=f"classifier: {cost.classifier_parameters:,} parameters")
