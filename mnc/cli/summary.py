"""``mnc summary SPEC``: populations, projections, parameters, MACs and memory from the IR.

A recurrent network adds each projection's kind, delay, upsampling and the steps it computes
at, and gives MACs and activations per step and per image (all steps).
"""

from __future__ import annotations

import argparse

from mnc.cli.common import (
    add_json_flag,
    add_spec_argument,
    human_bytes,
    human_count,
    print_json,
    table,
)
from mnc.text import peak_probability_text

NAME = "summary"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_argument(parser)
    add_json_flag(parser)


def run(args: argparse.Namespace) -> int:
    from mnc.analysis.cost import network_cost
    from mnc.analysis.recurrence import describe_recurrence, projection_kind
    from mnc.compiler import compile_ir

    ir = compile_ir(args.spec)
    cost = network_cost(ir)
    if args.json:
        print_json({"name": ir.name, "content_hash": ir.content_hash, **cost.as_dict()})
        return 0
    memory = {item.name: item for item in cost.populations}
    print(
        f"{ir.name} ({args.spec}), IR hash {ir.short_hash}, mask mode {ir.mask.mode}, "
        f"seed {ir.mask.seed}\n"
    )
    print(
        table(
            ["population", "area", "layer", "neurons", "channels", "grid",
             "activations / step" if ir.is_recurrent else "activations"],
            [
                [
                    p.name,
                    p.area,
                    p.layer,
                    p.neurons,
                    p.channels,
                    f"{p.height}x{p.width}",
                    human_bytes(memory[p.name].activation_bytes),
                ]
                for p in ir.populations
            ],
        )
    )
    print()
    projection_costs = {item.name: item for item in cost.projections}
    recurrent = ir.is_recurrent
    time_columns = ["kind", "delay", "upsample", "runs"] if recurrent else []
    print(
        table(
            [
                "projection",
                *time_columns,
                "in",
                "out",
                "kernel",
                "stride",
                "sigma_px",
                "peak",
                "params",
                "dense MACs" + (" / step" if recurrent else ""),
                "masked MACs" + (" / step" if recurrent else ""),
            ],
            [
                [
                    q.name,
                    *([projection_kind(ir, q), q.delay, q.upsample,
                       projection_costs[q.name].runs] if recurrent else []),
                    q.in_channels,
                    q.out_channels,
                    q.kernel_size,
                    q.stride,
                    q.sigma_px,
                    peak_probability_text(q.peak_probability),
                    projection_costs[q.name].parameters,
                    human_count(projection_costs[q.name].dense_macs),
                    human_count(projection_costs[q.name].masked_macs),
                ]
                for q in ir.projections
            ],
        )
    )
    print()
    kept = cost.masked_macs / cost.dense_macs if cost.dense_macs else 0.0
    print(f"parameters          {cost.parameters:,} (classifier {cost.classifier_parameters:,})")
    if recurrent:
        print(f"time                {describe_recurrence(ir)}")
        print(f"dense MACs / step   {cost.dense_macs:,} ({human_count(cost.dense_macs)})")
        print(f"masked MACs / step  {cost.masked_macs:,.0f} ({human_count(cost.masked_macs)}, "
              f"{kept:.1%} of dense, expected over the masks)")
        print(f"dense MACs / image  {cost.dense_macs_total:,} "
              f"({human_count(cost.dense_macs_total)}, {cost.steps} steps; a projection with "
              f"delay d computes from step d on)")
        print(f"masked MACs / image {cost.masked_macs_total:,.0f} "
              f"({human_count(cost.masked_macs_total)})")
        print(f"activations / step  {human_bytes(cost.activation_bytes)} (float32, all "
              f"populations)")
        print(f"activations / image {human_bytes(cost.activation_bytes_total)} (every step "
              f"kept: per-step features, training through time)")
    else:
        print(f"dense MACs / image  {cost.dense_macs:,} ({human_count(cost.dense_macs)})")
        print(
            f"masked MACs / image {cost.masked_macs:,.0f} ({human_count(cost.masked_macs)}, "
            f"{kept:.1%} of dense, expected over the masks)"
        )
        print(f"activations / image {human_bytes(cost.activation_bytes)} (float32, all "
              f"populations)")
    print(
        f"readout             {len(ir.readout.populations)} populations -> "
        f"{ir.readout.features} features -> {ir.readout.classes} classes"
    )
    return 0
