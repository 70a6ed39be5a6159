"""Command-line options shared by ``mnc rsa`` and ``mnc physiology``, and their conversion."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from mnc.cli.config_file import add_config_flag
from mnc.cli.options import add_model_flags, from_flags, given_values
from mnc.errors import UsageError
from mnc.neuro.model_features import STEP_WORDS
from mnc.neuro.options import AnalysisOptions, NeuralSelection, PhysiologyOptions
from mnc.neuro.sources.synthetic import SYNTHETIC


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?",
                        help="shipped spec name (mouse, tiny, ...) or spec file (YAML); not "
                             "with --model")
    parser.add_argument("--weights", required=True,
                        help="trained weights (saved model or training checkpoint), a run "
                             "folder of mnc train --keep-checkpoints (scores every kept "
                             "checkpoint: trajectory.csv), a CSV of label,accuracy,weights "
                             "(checkpoints of a --model), or 'untrained' for the spec's "
                             "freshly initialised network; comma-separate several (seeds of "
                             "one model: instances.csv, or trajectories tested across seeds)")
    # The flags of PhysiologyOptions, in two runs so that --help keeps its order.
    add_model_flags(parser, PhysiologyOptions, ["seed"])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--boc-cache", metavar="DIR",
                        help="Allen Brain Observatory cache folder (holds manifest.json)")
    source.add_argument("--recordings", metavar="FILE",
                        help="recordings file instead of a cache: .npz or NetCDF (.nc) with "
                             "images, responses (stimuli, trials, cells) and per-cell area "
                             "and layer or Cre line (see the README); 'synthetic': built-in "
                             "synthetic cells with a known answer, to try the comparison")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="folder for tables, figures and summary.json")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="feature/score cache (default: OUTPUT/cache)")
    # Lists are comma-separated (one value per flag, repeatable), so none swallows the spec.
    add_model_flags(parser, PhysiologyOptions, [name for name in PhysiologyOptions.model_fields
                                                 if name != "seed"],
                    parse_as={"step": step_choice})
    parser.add_argument("--json", action="store_true",
                        help="print the summary as JSON instead of a table")
    add_config_flag(parser)


def step_choice(text: str) -> int | str:
    """argparse type of ``--step``: a step number (checked against the model later), 'last'
    or 'readout'."""
    if text in STEP_WORDS:
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a step number, 'last' or 'readout', not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a step number from 0, not {value}")
    return value


_CACHE_ONLY = (("download", "--download"), ("skip_missing", "--skip-missing"),
               ("max_sessions", "--max-sessions"))


def neural_source(args: argparse.Namespace) -> Any:
    """The recordings file or Brain Observatory cache folder the command reads, or the
    synthetic recordings (``--recordings synthetic``) themselves."""
    if args.recordings is None:
        return str(args.boc_cache)
    given = [flag for name, flag in _CACHE_ONLY if getattr(args, name)]
    if given:
        raise UsageError(f"{', '.join(given)}: only with --boc-cache, not with --recordings")
    if args.recordings == SYNTHETIC:
        from mnc.neuro.sources.synthetic import synthetic_recordings

        return synthetic_recordings(seed=args.seed)
    return str(args.recordings)


def _source_text(args: argparse.Namespace) -> str:
    if args.recordings == SYNTHETIC:
        return f"synthetic recordings (seed {args.seed})"
    return str(args.boc_cache if args.recordings is None else args.recordings)


def refuse_output_over_inputs(args: argparse.Namespace) -> None:
    """``-o DIR`` apart from every input: the spec, weights, recordings or cache folder and
    the feature cache (which may lie inside it, as the default ``OUTPUT/cache`` does)."""
    from mnc.io.outputs import refuse_output_folder_over_inputs

    weights = [("--weights", item) for item in (i.strip() for i in str(args.weights).split(","))
               if item and item != "untrained"]
    refuse_output_folder_over_inputs(
        args.output,
        [("the spec", args.spec), *weights, ("--boc-cache", args.boc_cache),
         ("--recordings", None if args.recordings == SYNTHETIC else args.recordings)],
        may_lie_inside=[("--cache-dir", args.cache_dir)])


def announce_comparison(command: str, args: argparse.Namespace) -> None:
    """The start line of ``mnc rsa`` / ``mnc physiology``: model, data, selection, output."""
    from mnc.cli.common import announce
    from mnc.text import shown

    def listed(values: list | None) -> str:
        return ",".join(str(value) for value in values) if values else "all"

    sessions = f", at most {args.max_sessions} sessions per area and Cre line" \
        if getattr(args, "max_sessions", None) else ""
    announce(command, f"comparing {shown(args.spec or args.model)} (weights "
                      f"{shown(args.weights)}) with {shown(_source_text(args))}: areas "
                      f"{shown(listed(args.areas))}, Cre lines {shown(listed(args.cre_lines))}, "
                      f"depths {listed(args.depths)}{sessions}; writing to {shown(args.output)}")


def comparison_options(args: argparse.Namespace,
                       model: type[PhysiologyOptions] = PhysiologyOptions) -> PhysiologyOptions:
    """The command's options as ``model`` (``RSAOptions`` for ``mnc rsa``); a value out of
    range is one UsageError naming its flag."""
    return from_flags(model, given_values(args, model))  # type: ignore[no-any-return]


def selection_from_args(args: argparse.Namespace) -> NeuralSelection:
    return comparison_options(args).selection()


def options_from_args(args: argparse.Namespace) -> AnalysisOptions:
    return comparison_options(args).analysis()


def progress_bar(description: str) -> Callable[[int, int], None]:
    """A bar fed with (done, total); a bar on a terminal or in a notebook, a line every few
    seconds in a log."""

    from mnc import progress

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = progress.bar(total=total, desc=description, unit="img")
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update
