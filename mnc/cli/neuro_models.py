"""Which model ``mnc rsa`` / ``mnc physiology`` score: a spec's network, a training run's kept
checkpoints (``--weights RUN_DIR``), or any torch module (``--model``, ``--layers``)."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from mnc.errors import UsageError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from mnc.cli.common import comma_list

    group = parser.add_argument_group(
        "any torch module instead of a spec (baselines such as VGG16 or AlexNet)")
    group.add_argument("--model", metavar="KIND:NAME",
                       help="torchvision:NAME (e.g. torchvision:vgg16; needs torchvision) or "
                            "module:package.module:factory; --weights is then a state dict "
                            "file (read weights-only) or 'untrained'")
    group.add_argument("--layers", type=comma_list(), action="extend", metavar="NAME,...",
                       help="with --model: module names whose outputs are compared, e.g. "
                            "features.4,features.9 (flattened per image)")
    group.add_argument("--input-size", type=comma_list(int), metavar="H,W",
                       help="with --model: input height,width (default 224,224); images are "
                            "grey, replicated to 3 channels, normalised by --normalize")
    other = parser.add_argument_group(
        "mnc rsa: instances of the model against instances of a second model (model B)")
    other.add_argument("--compare-model", metavar="KIND:NAME",
                       help="model B, as --model (torchvision:NAME or module:...); its "
                            "instances are compared with --weights's (comparison.csv, "
                            "instances.png); input size as --input-size")
    other.add_argument("--compare-layers", type=comma_list(), action="extend",
                       metavar="NAME,...", help="model B's layers, as --layers")
    other.add_argument("--compare-weights", default="untrained", metavar="W,...",
                       help="model B's instances: comma-separated state dict files, or "
                            "'untrained' (default; then --compare-seeds instances)")
    other.add_argument("--compare-seeds", type=int, default=3, metavar="N",
                       help="untrained model B: this many instances, seeds 0..N-1 (default 3)")


def weights_list(args: argparse.Namespace) -> list[str]:
    """``--weights``: one or more comma-separated weights files, run folders or CSVs."""
    items = [item.strip() for item in str(args.weights).split(",") if item.strip()]
    if not items:
        raise UsageError("--weights: give a weights file, a run folder, a checkpoint CSV or "
                         "'untrained'")
    return items


def model_from_args(args: argparse.Namespace, weights: str | None = None) -> Any:
    """The LoadedModel the arguments name, with ``weights`` (default: ``--weights``, one)."""
    from mnc.neuro import model_features

    weights = weights if weights is not None else args.weights

    if args.model:
        from mnc.neuro.any_model import load_any_model

        if args.spec:
            raise UsageError(f"give a spec ({args.spec}) or --model {args.model}, not both")
        if not args.layers:
            raise UsageError(f"--model {args.model}: give the layers to compare with --layers "
                             f"(e.g. --layers features.4,features.9)")
        return load_any_model(args.model, args.layers, weights, args.seed, _preprocess(args))
    if args.layers or args.input_size:
        raise UsageError("--layers and --input-size go with --model")
    if not args.spec:
        raise UsageError("give the spec whose network to compare (e.g. specs/mouse.yaml), or "
                         "--model KIND:NAME with --layers")
    return model_features.load_model(args.spec, weights, args.seed)


def _preprocess(args: argparse.Namespace) -> Any:
    from mnc.imaging import IMAGENET_MEAN, IMAGENET_STD
    from mnc.neuro.model_features import Preprocess

    size = args.input_size or [224, 224]
    if len(size) not in (1, 2) or min(size) < 1:
        raise UsageError(f"--input-size: expected H,W (positive), got {size}")
    imagenet = args.normalize == "imagenet"
    return Preprocess(size[0], size[-1], 3, IMAGENET_MEAN if imagenet else None,
                      IMAGENET_STD if imagenet else None)


def compared_models(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(instance label, LoadedModel) of model B (``--compare-model``), in order."""
    from mnc.neuro.any_model import load_any_model
    from mnc.neuro.trajectory import instance_labels

    if not args.compare_layers:
        raise UsageError(f"--compare-model {args.compare_model}: give its layers with "
                         f"--compare-layers")
    if args.compare_weights.strip() == "untrained":
        if args.compare_seeds < 1:
            raise UsageError("--compare-seeds must be 1 or more")
        return [(f"seed{seed}", load_any_model(args.compare_model, args.compare_layers,
                                               "untrained", seed, _preprocess(args)))
                for seed in range(args.compare_seeds)]
    files = [item.strip() for item in args.compare_weights.split(",") if item.strip()]
    return [(label, load_any_model(args.compare_model, args.compare_layers, item, args.seed,
                                   _preprocess(args)))
            for label, item in zip(instance_labels(files), files, strict=True)]


def is_trajectory(args: argparse.Namespace) -> bool:
    """Whether ``--weights`` names training runs (folders with checkpoints.json) or checkpoint
    CSVs (label,accuracy,weights): then every checkpoint is scored and tested."""
    from pathlib import Path

    from mnc.errors import UserFileError
    from mnc.io.checkpoint_index import INDEX_JSON
    from mnc.neuro.trajectory import is_run_folder

    items = weights_list(args)
    for item in items:
        if Path(item).expanduser().is_dir() and not is_run_folder(item):
            raise UserFileError(f"{item}: a folder without {INDEX_JSON}; give a weights file "
                                f"(e.g. {Path(item) / 'best.pt'}) or a run trained with "
                                f"--keep-checkpoints")
    runs = [is_run_folder(item) for item in items]
    tables = [item.lower().endswith(".csv") for item in items]
    if (any(runs) or any(tables)) and not (all(runs) or all(tables)):
        raise UsageError("--weights: give run folders only, checkpoint CSVs only, or weights "
                         "files only")
    if all(runs) and args.model:
        raise UsageError(f"--model {args.model} with a run folder: list its checkpoints in a "
                         f"CSV (label,accuracy,weights) and give that as --weights")
    return all(runs) or all(tables)


def run_trajectory(kind: str, args: argparse.Namespace, options: Any) -> int:
    """Score every checkpoint of the runs or checkpoint CSVs ``--weights``; print the tests."""
    from mnc.cli.common import print_json
    from mnc.cli.neuro_options import neural_source, progress_bar, selection_from_args
    from mnc.neuro.api import records
    from mnc.neuro.checkpoint_table import read_checkpoint_table
    from mnc.neuro.trajectory import (
        Checkpoint,
        instance_labels,
        score_checkpoints,
        score_runs,
    )

    items = weights_list(args)
    common = (neural_source(args), args.output, args.cache_dir, selection_from_args(args),
              options)
    if items[0].lower().endswith(".csv"):
        if not args.model and not args.spec:
            model_from_args(args)  # the message saying what to give
        instances = [[Checkpoint(label, row.label, None, row.accuracy,
                                 partial(model_from_args, args, str(row.weights)))
                      for row in read_checkpoint_table(item)]
                     for label, item in zip(instance_labels(items), items, strict=True)]
        report = score_checkpoints(instances, *common, analyses=(kind,),
                                   progress=lambda name: progress_bar(name),
                                   info={"checkpoint_tables": items})
    else:
        if not args.spec:
            raise UsageError(f"--weights {args.weights} is a training run; give the spec it "
                             f"was trained on")
        report = score_runs(args.spec, items, *common, analyses=(kind,),
                            progress=lambda name: progress_bar(name))
    if args.json:
        print_json({"conclusion": report.conclusion,
                    "tests": records(report.tests) if not report.tests.empty else [],
                    "files": report.files})
        return 0
    if kind == "rsa":
        _print_trajectory_tests(records(report.tests), report.conclusion)
    else:
        _print_physiology_trajectory(
            records(report.physiology[report.physiology["kind"] == "ir_mapped"]))
    print(f"\nwrote {len(report.files)} files to {report.output_dir}")
    return 0


def _print_trajectory_tests(tests: list[dict[str, Any]], conclusion: dict[str, str]) -> None:
    """Each region's trajectory test, why a verdict could not be reached, the conclusion."""
    from mnc.cli.common import table

    print(table(["region", "kind", "SSM first", "SSM last", "early span", "late span",
                 "late slope", "late interval", "verdict"],
                [[r["region"], r["kind"], r["ssm_first"], r["ssm_last"],
                  _percent(r.get("early_span")), _percent(r.get("late_span")),
                  r.get("late_slope"),
                  _interval(r.get("late_slope_low"), r.get("late_slope_high")),
                  r["verdict"]] for r in tests]))
    reasons = [f"  {r['region']} ({r['kind']}): {r['reason']}" for r in tests
               if r.get("reason")]
    if reasons:
        print("\ncannot tell, because:\n" + "\n".join(reasons))
    print("\nDoes similarity keep rising with task accuracy?")
    for line in conclusion.values():
        print(f"  {line}")


def _print_physiology_trajectory(rows: list[dict[str, Any]]) -> None:
    from mnc.cli.common import table

    print(table(["instance", "checkpoint", "val top-1", "region", "population", "metric",
                 "KS"],
                [[r["instance"], r["checkpoint"], r["val_top1"], r["region"],
                  r["population"], r["metric"], r["ks_statistic"]] for r in rows]))


def run_instances(kind: str, args: argparse.Namespace, options: Any) -> int:
    """Several weights files of one model (seeds): each scored into OUTPUT/<name>, then the
    instance table (best-population SSM per instance, across-instance interval)."""
    from pathlib import Path

    from mnc.cli.common import print_json, table
    from mnc.cli.neuro_options import neural_source, progress_bar, selection_from_args
    from mnc.neuro.api import records, run_physiology, run_rsa
    from mnc.neuro.instances import write_outputs
    from mnc.neuro.trajectory import instance_labels

    items = weights_list(args)
    output = Path(args.output).expanduser()
    cache = args.cache_dir or str(output / "cache")
    run = run_rsa if kind == "rsa" else run_physiology
    reports = []
    for label, weights in zip(instance_labels(items), items, strict=True):
        reports.append(run(model_from_args(args, weights), neural_source(args),
                           output / label.replace(":", "-"), cache,
                           selection_from_args(args), options, progress_bar(label)))
    if kind != "rsa":
        print(f"wrote {len(items)} instance folders to {output}")
        return 0
    label = str(reports[0].tables["rsa"]["model"].iloc[0])
    models = {label: reports}
    if args.compare_model:
        other = []
        for name, loaded in compared_models(args):
            other.append(run_rsa(loaded, neural_source(args),
                                 output / f"compare-{name.replace(':', '-')}", cache,
                                 selection_from_args(args), options, progress_bar(name)))
        other_label = str(other[0].tables["rsa"]["model"].iloc[0])
        models[other_label if other_label != label else f"{other_label} (B)"] = other
    tables = write_outputs(models, output, options.methods[0])
    rows = records(tables["instances"])
    compared = records(tables["comparison"]) if "comparison" in tables else []
    if args.json:
        print_json({"instances": rows, "comparison": compared,
                    "files": [str(output / f"{name}.csv") for name in tables]
                    + [str(output / "instances.png")]})
        return 0
    print(table(["model", "region", "instances", "mean best SSM", "95% interval",
                 "per instance"],
                [[r["model"], r["region"], r["n_instances"], r["ssm_mean"],
                  _interval(r["ssm_low"], r["ssm_high"]), r["ssm_instances"]] for r in rows]))
    if compared:
        print()
        print(table(["region", "A", "B", "difference", "95% interval", "p", "Cohen's d",
                     "basis"],
                    [[r["region"], r["model_a"], r["model_b"], r["difference"],
                      _interval(r["difference_low"], r["difference_high"]), r["p_value"],
                      r["cohens_d"], r["basis"]] for r in compared]))
    print(f"\nwrote {', '.join(f'{name}.csv' for name in tables)}, instances.png and one "
          f"folder per instance to {output}")
    return 0


def _percent(value: Any) -> str | None:
    return None if value is None else f"{value:.1%}"


def _interval(low: Any, high: Any) -> str | None:
    if low is None or high is None:
        return None
    return f"{low:.3f} to {high:.3f}"
