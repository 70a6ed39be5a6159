"""``mnc rsa SPEC --weights W (--boc-cache DIR | --recordings FILE) -o OUT``.

RSA and predictivity vs recorded cells (Allen Brain Observatory or a recordings file).
"""

from __future__ import annotations

import argparse
from typing import Any

from mnc.text import shown

NAME = "rsa"
HELP = ("compare every model population with Allen Brain Observatory recordings: RDMs, SSM "
        "with noise ceilings, predictivity")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mnc.cli.neuro_models import add_model_arguments
    from mnc.cli.neuro_options import add_common_arguments
    from mnc.cli.options import add_model_flags
    from mnc.neuro.options import PhysiologyOptions, RSAOptions

    add_common_arguments(parser)
    add_model_arguments(parser)
    add_model_flags(parser, RSAOptions, [name for name in RSAOptions.model_fields
                                         if name not in PhysiologyOptions.model_fields])


def extend_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """``--config FILE.yaml``: the file's options become defaults the flags override."""
    from mnc.cli.config_file import apply_config_file

    apply_config_file(parser, argv, NAME)


def run(args: argparse.Namespace) -> int:
    from mnc.extras import require

    require("neuro", "mnc rsa")  # before any output folder or cache is made
    from mnc.cli.common import print_json
    from mnc.cli.neuro_models import (
        is_trajectory,
        model_from_args,
        run_instances,
        run_trajectory,
        weights_list,
    )
    from mnc.cli.neuro_options import (
        announce_comparison,
        comparison_options,
        neural_source,
        progress_bar,
        refuse_output_over_inputs,
        selection_from_args,
    )
    from mnc.errors import UsageError
    from mnc.neuro.api import run_rsa
    from mnc.neuro.options import RSAOptions

    refuse_output_over_inputs(args)
    announce_comparison("rsa", args)
    options = comparison_options(args, RSAOptions).analysis()
    if is_trajectory(args):
        if args.compare_model:
            raise UsageError("--compare-model compares trained instances; give weights files, "
                             "not runs or checkpoint tables")
        return run_trajectory("rsa", args, options)
    if len(weights_list(args)) > 1 or args.compare_model:
        return run_instances("rsa", args, options)
    report = run_rsa(model_from_args(args), neural_source(args), args.output, args.cache_dir,
                     selection_from_args(args), options, progress_bar("features"))
    if args.json:
        print_json(_json_summary(report))
    else:
        _print_report(report, options)
    return 0


def _json_summary(report: Any) -> dict[str, Any]:
    """The report without its full tables: files, cache hits and the best populations."""
    from mnc.neuro.api import records

    return ({key: value for key, value in report.to_dict().items() if key != "tables"}
            | {"best": records(report.tables["rsa_best"]),
               "predictivity_best": records(report.tables["predictivity_best"])
               if "predictivity_best" in report.tables else []})


def _print_report(report: Any, options: Any) -> None:
    """The best population per region (first method), predictivity per regression, and
    what came from the cache."""
    from mnc.cli.common import table
    from mnc.neuro.api import records

    primary = options.methods[0]
    rows = [r for r in records(report.tables["rsa_best"]) if r["method"] == primary]
    # A model without an IR (--model, a baseline) maps no population: no columns of "-"/nan
    mapped = any(r["ir_population"] for r in rows)
    print(table(["region", "cells", "best population", f"SSM ({primary})", "+-",
                 "noise ceiling", *(["IR population", "its SSM"] if mapped else [])],
                [[r["region"], r["n_cells"], r["population"], r["ssm"], r["ssm_std"],
                  f"{r['nc_lower']:.3f} to {r['nc_upper']:.3f}",
                  *([r["ir_population"] or None, r["ir_population_ssm"]] if mapped else [])]
                 for r in rows]))
    for regression in options.regressions:
        print()
        print(_predictivity_table(records(report.tables["predictivity_best"]), regression,
                                  mapped))
    cached = "features and scores from cache" if report.scores_cached else (
        "features from cache" if report.features_cached else "features computed")
    print(f"\n{cached}; wrote {len(report.files)} files to {shown(str(report.output_dir))}")


def _predictivity_table(rows: list[dict[str, Any]], regression: str, mapped: bool) -> str:
    from mnc.cli.common import table

    return table([f"region ({regression})", "reliable cells",
                  *(["IR population", "score"] if mapped else []),
                  "best population", "best score"],
                 [[r["region"], r["n_reliable_cells"],
                   *([r["ir_population"] or None, r["ir_population_score"]] if mapped
                     else []),
                   r["best_population"], r["best_score"]]
                  for r in rows if r["regression"] == regression])
