"""Command-line options shared by ``mnc rsa`` and ``mnc physiology``, and their conversion."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mnc.cli.common import comma_list, positive_number
from mnc.cli.config_file import add_config_flag
from mnc.errors import UsageError
from mnc.neuro.allen import ResponseWindow
from mnc.neuro.layers import ALLEN_AREAS
from mnc.neuro.model_features import STEP_WORDS
from mnc.neuro.synthetic import SYNTHETIC

if TYPE_CHECKING:  # the analyses need pandas (neuro extra); --help must not
    from mnc.neuro.api import AnalysisOptions, NeuralSelection


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
    parser.add_argument("--seed", type=positive_number(int, zero_allowed=True), default=0,
                        help="seed of untrained weights and splits (default 0)")
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
    parser.add_argument("--areas", type=comma_list(), action="extend", metavar="AREA,...",
                        help="visual areas, e.g. " + ",".join(ALLEN_AREAS) + " (default: "
                             "every area in the data)")
    parser.add_argument("--cre-lines", type=comma_list(), action="extend", metavar="LINE,...",
                        help="Cre lines, e.g. Cux2-CreERT2,Rbp4-Cre_KL100 (default all)")
    parser.add_argument("--depths", type=comma_list(int), action="extend", metavar="UM,...",
                        help="imaging depths in micrometres, e.g. 175,275 (default all)")
    parser.add_argument("--max-sessions", type=positive_number(int), metavar="N",
                        help="at most N natural-scenes sessions per area and Cre line")
    parser.add_argument("--window", type=positive_number(float), default=0.5, metavar="S",
                        help="response window after image onset in seconds (default 0.5)")
    parser.add_argument("--baseline", type=positive_number(float, zero_allowed=True),
                        default=0.0, metavar="S",
                        help="subtract the mean dF/F of this long before onset (default 0)")
    parser.add_argument("--download", action="store_true",
                        help="let allensdk download missing tables and sessions")
    parser.add_argument("--skip-missing", action="store_true",
                        help="analyse only sessions already in the cache")
    parser.add_argument("--min-cells", type=int, default=5,
                        help="leave out regions with fewer recorded cells (default 5)")
    parser.add_argument("--splits", type=positive_number(int), default=5,
                        help="random split-halves of the trials (default 5)")
    parser.add_argument("--batch-size", type=positive_number(int), default=32,
                        help="images per forward pass (default 32)")
    parser.add_argument("--max-units", type=positive_number(int), default=2000,
                        help="model units sampled per population for per-unit statistics")
    parser.add_argument("--normalize", choices=["imagenet", "none"], default="imagenet",
                        help="input normalisation after scaling to [0, 1] (default imagenet)")
    parser.add_argument("--min-reliability", type=float, default=0.3,
                        help="split-half reliability a cell needs to be scored (default 0.3)")
    parser.add_argument("--step", type=step_choice, default="readout", metavar="N|last|readout",
                        help="recurrent networks: compare the activity at step N (0-based), at "
                             "the last step, or averaged over the steps the readout averages "
                             "(default readout: the last step unless the spec sets readout "
                             "steps); a feed-forward network has step 0 only")
    parser.add_argument("--map-inhibitory", action="store_true",
                        help="map regions of inhibitory Cre lines (Sst, Vip, Pvalb) to the "
                             "IR's excitatory population of their area and layer (default: "
                             "left unmapped, compared with every population)")
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
        from mnc.neuro.synthetic import synthetic_recordings

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


def selection_from_args(args: argparse.Namespace) -> NeuralSelection:
    from mnc.neuro.api import NeuralSelection

    return NeuralSelection(
        areas=tuple(args.areas) if args.areas else None,
        cre_lines=tuple(args.cre_lines) if args.cre_lines else None,
        depths_um=tuple(args.depths) if args.depths else None, max_per_group=args.max_sessions,
        window=ResponseWindow(window_s=args.window, baseline_s=args.baseline),
        allow_download=args.download, skip_missing=args.skip_missing,
        min_cells=args.min_cells)


def options_from_args(args: argparse.Namespace, **extra: object) -> AnalysisOptions:
    from mnc.neuro.api import AnalysisOptions

    return AnalysisOptions(
        n_splits=args.splits, seed=args.seed, batch_size=args.batch_size,
        max_units=args.max_units, normalize=args.normalize,
        min_reliability=args.min_reliability, step=args.step,
        map_inhibitory=args.map_inhibitory,
        **extra)  # type: ignore[arg-type]


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
