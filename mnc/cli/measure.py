"""``mnc measure``: derive spec measurements from the voxel-scale mouse connectome.

    mnc measure connectome --voxel-model DIR --sources VISp --targets VISl4,VISal4 \
        -o interareal.yaml
    mnc measure surface --voxel-model DIR --populations VISp4,VISp2/3,VISp5 -o surfaces.yaml

Each writes a spec fragment to include with ``extends: [mouse.yaml, fragment.yaml]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnc.cli.common import positive_number
from mnc.cli.options import add_model_flags, from_flags, given_values
from mnc.io import strict_json
from mnc.io.outputs import output_file
from mnc.measure.profile import ProfileSettings
from mnc.text import shown

NAME = "measure"
HELP = "derive interareal widths/strengths and surface areas from the voxel connectome"


_positive = positive_number(float)


def _fraction(text: str) -> float:
    value = _positive(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="measure_command", metavar="WHAT", required=True)
    connectome = commands.add_parser(
        "connectome", help="strength and sigma_mm of interareal projections",
        description="Derive interareal strengths and Gaussian widths (sigma_mm) from the "
                    "voxel model and write them as an 'interareal' spec fragment.")
    _add_common(connectome)
    connectome.add_argument("--sources", required=True, metavar="NAMES",
                            help="comma-separated source areas or populations; an area "
                                 "expands to --source-layers (VISp -> VISp4,VISp2/3,VISp5)")
    connectome.add_argument("--targets", required=True, metavar="NAMES",
                            help="comma-separated target populations, e.g. VISl4,VISal4")
    connectome.add_argument("--source-layers", default="4,2/3,5", metavar="LAYERS",
                            help="layers an area among --sources expands to (default 4,2/3,5)")
    connectome.add_argument("--cache-dir", metavar="DIR",
                            help="where intermediate per-voxel results are kept "
                                 "(default $XDG_CACHE_HOME/mnc/measure)")
    connectome.add_argument("--no-cache", action="store_true",
                            help="neither read nor write cached results")
    add_model_flags(connectome, ProfileSettings, parse_as={"min_prominence": _fraction})
    surface = commands.add_parser(
        "surface", help="surface area (mm2) of populations on the flat map",
        description="Derive population surface areas (convex hull of the voxels on the "
                    "cortical flat map) and write a 'surface_area_mm2' spec fragment.")
    _add_common(surface)
    surface.add_argument("--populations", required=True, metavar="NAMES",
                         help="comma-separated populations with a layer, e.g. VISp4,VISp2/3")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--voxel-model", required=True, metavar="DIR",
                        help="directory with the voxel model, annotation, structure tree and "
                             "flat map (layout: README, 'Measuring from the voxel connectome')")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", type=output_file,
                        help="spec fragment to write (YAML)")
    parser.add_argument("--flatmap", metavar="FILE",
                        help="flat map .npy to use instead of DIR/flatmap.npy")
    parser.add_argument("--hemisphere", choices=["right", "left", "both"], default="right",
                        help="hemisphere whose voxels are used (default right)")
    parser.add_argument("--json", action="store_true",
                        help="print the measurements as JSON instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _input_files(args: argparse.Namespace) -> list[Path]:
    """The flat map and the files of the voxel-model folder: -o must not replace any of them."""
    folder = Path(args.voxel_model or "")
    inside = [path for path in folder.iterdir() if path.is_file()] if args.voxel_model and \
        folder.is_dir() else []
    return ([Path(args.flatmap)] if args.flatmap else []) + inside


def run(args: argparse.Namespace) -> int:
    from mnc.extras import require

    require("measure", "mnc measure")  # before any output or cache folder is made
    from mnc.cli.common import announce
    from mnc.io.outputs import refuse_output_over_inputs
    from mnc.measure import derive_interareal, derive_surfaces
    from mnc.measure.fragment import write_fragment
    from mnc.measure.names import split_list

    refuse_output_over_inputs(args.output, _input_files(args))
    progress = False if args.no_progress else None  # None: bars on a terminal or notebook
    if args.measure_command == "connectome":
        announce("measure connectome", f"sources {args.sources} -> targets {args.targets} "
                 f"from the voxel model in {args.voxel_model} ({args.hemisphere} hemisphere); "
                 f"writing {args.output}")
        settings = from_flags(ProfileSettings, given_values(args, ProfileSettings))
        text, measurement = derive_interareal(
            args.voxel_model, split_list(args.sources), split_list(args.targets),
            source_layers=split_list(args.source_layers), settings=settings,
            hemisphere=args.hemisphere, flatmap=args.flatmap, cache_dir=args.cache_dir,
            use_cache=not args.no_cache, progress=progress)
        write_fragment(args.output, text)
        rows = [projection.summary() for projection in measurement.projections]
        if args.json:
            print(strict_json.dumps({"output": str(args.output), "cached_projections":
                                     measurement.cache_hits, "projections": rows}, indent=2))
        else:
            print(f"{'projection':<22} {'strength':>9} {'sigma_mm':>9} {'used/all':>9}")
            for row in rows:
                sigma = "-" if row["sigma_mm"] is None else f"{row['sigma_mm']:.4f}"
                used = f"{row['used']}/{row['target_voxels']}"
                print(f"{row['projection']:<22} {row['strength']:>9.4f} {sigma:>9} {used:>9}")
            if measurement.cache_hits:
                print(f"{measurement.cache_hits} of {len(rows)} projections read from the cache")
            print(f"wrote {shown(args.output)}")
        return 0
    announce("measure surface", f"surface areas of {args.populations} from the flat map of "
             f"{args.voxel_model} ({args.hemisphere} hemisphere); writing {args.output}")
    text, surfaces = derive_surfaces(args.voxel_model, split_list(args.populations),
                                     hemisphere=args.hemisphere, flatmap=args.flatmap)
    write_fragment(args.output, text)
    if args.json:
        print(strict_json.dumps({"output": str(args.output),
                                 "surface_area_mm2": surfaces.values_mm2,
                                 "voxels": surfaces.voxels}, indent=2))
    else:
        for population, value in surfaces.values_mm2.items():
            print(f"{population:<12} {value:9.4f} mm2  ({surfaces.voxels[population]} voxels)")
        print(f"wrote {shown(args.output)}")
    return 0
