"""``mnc physiology SPEC --weights W (--boc-cache DIR | --recordings FILE) -o OUT``.

Response statistics of model units vs recorded cells.
"""

from __future__ import annotations

import argparse

from mnc.text import shown

NAME = "physiology"
HELP = ("compare sparseness and reliability distributions of model units with Allen Brain "
        "Observatory cells (Kolmogorov-Smirnov)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mnc.cli.neuro_models import add_model_arguments
    from mnc.cli.neuro_options import add_common_arguments

    add_common_arguments(parser)
    add_model_arguments(parser)


def extend_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """``--config FILE.yaml``: the file's options become defaults the flags override."""
    from mnc.cli.config_file import apply_config_file

    apply_config_file(parser, argv, NAME)


def run(args: argparse.Namespace) -> int:
    from mnc.extras import require

    require("neuro", "mnc physiology")  # before any output folder or cache is made
    from mnc.cli.common import print_json, table
    from mnc.cli.neuro_models import (
        is_trajectory,
        model_from_args,
        run_instances,
        run_trajectory,
        weights_list,
    )
    from mnc.cli.neuro_options import (
        announce_comparison,
        neural_source,
        options_from_args,
        progress_bar,
        refuse_output_over_inputs,
        selection_from_args,
    )
    from mnc.errors import UsageError
    from mnc.neuro.api import closest_populations, records, run_physiology

    refuse_output_over_inputs(args)
    if args.compare_model:
        raise UsageError("--compare-model goes with mnc rsa (similarity of instances)")
    announce_comparison("physiology", args)
    if is_trajectory(args):
        return run_trajectory("physiology", args, options_from_args(args))
    if len(weights_list(args)) > 1:
        return run_instances("physiology", args, options_from_args(args))
    loaded = model_from_args(args)
    report = run_physiology(loaded, neural_source(args), args.output, args.cache_dir,
                            selection_from_args(args), options_from_args(args),
                            progress_bar("features"))
    cells = records(report.tables["physiology_cells"])
    mapped = [r for r in records(report.tables["physiology"]) if r["ir_mapped"]]
    # A model without an IR maps no population: show the closest one per region and metric.
    rows = mapped or [r for r in records(report.tables["physiology"])
                      if (r["region"], r["metric"], r["population"]) in {
                          (c["region"], c["metric"], c["closest"])
                          for c in closest_populations(records(report.tables["physiology"]))}]
    if args.json:
        print_json({key: value for key, value in report.to_dict().items() if key != "tables"}
                   | {"ir_mapped": mapped, "shown": rows, "cells": cells})
        return 0
    print(table(["region", "population", "metric", "median model", "median cells", "KS", "p"],
                [[r["region"], r["population"], r["metric"], r["median_model"],
                  r["median_neural"], r["ks_statistic"], r["p_value"]] for r in rows]))
    print()
    print(table(["region", "cells", "median split-half reliability", "fraction reliable",
                 "noise fraction"],
                [[r["region"], r["n_cells"], r["median_split_half_reliability"],
                  r["fraction_reliable"], r["noise_fraction"]]
                 for r in cells]))
    print(f"\nwrote {len(report.files)} files to {shown(str(report.output_dir))}")
    return 0
