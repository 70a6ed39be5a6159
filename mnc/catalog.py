"""What the shipped specs build (``mnc specs``) and a starting variant of one (``mnc init``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnc.errors import UsageError
from mnc.spec.models import Spec
from mnc.spec.shipped import SPEC_SUFFIXES, is_spec_name, shipped_specs, spec_file


@dataclass(frozen=True)
class SpecEntry:
    """One shipped spec and the network it compiles to."""

    name: str
    path: Path
    title: str
    description: str
    populations: int
    projections: int
    parameters: int
    input_shape: tuple[int, int, int]
    content_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "title": self.title,
            "description": self.description,
            "populations": self.populations,
            "projections": self.projections,
            "parameters": self.parameters,
            "input": list(self.input_shape),
            "content_hash": self.content_hash,
        }


def catalog() -> list[SpecEntry]:
    """Every shipped spec, compiled, the default spec first."""
    from mnc.analysis.cost import network_cost
    from mnc.compiler import compile_loaded
    from mnc.spec.loader import load_spec

    entries = []
    for shipped in shipped_specs().values():
        loaded = load_spec(shipped.path)
        ir = compile_loaded(loaded)
        entries.append(
            SpecEntry(
                name=shipped.name,
                path=shipped.path,
                title=loaded.spec.name,
                description=" ".join(loaded.spec.description.split()),
                populations=len(ir.populations),
                projections=len(ir.projections),
                parameters=network_cost(ir).parameters,
                input_shape=(ir.input.channels, ir.input.height, ir.input.width),
                content_hash=ir.content_hash,
            )
        )
    return entries


def starter_text(base: str, output: Path) -> str:
    """A spec that extends ``base`` (a shipped name or a file) and changes nothing yet.

    The commented examples use names from the base itself, so uncommenting one gives a
    valid spec.
    """
    from mnc.spec.loader import load_spec

    loaded = load_spec(base)
    spec = loaded.spec
    if is_spec_name(base):
        extends = base
    else:  # relative to the new file, which is how the loader reads it
        relative = os.path.relpath(spec_file(base).resolve(), output.resolve().parent)
        extends = Path(relative).as_posix()
    projection, strength = next(iter(spec.interareal.projections.items()), (None, None))
    levels = {name: region.hierarchy_level for name, region in spec.areas.regions.items()}
    removable = [name for name, level in levels.items() if level == max(levels.values())]
    lines = [
        f"# A variant of {base!r} ({spec.name}). It holds only what differs from its base:",
        "# mappings merge key by key, `null` deletes a key, lists and numbers replace.",
        "# Uncomment and edit an example below, then:",
        f"#   mnc validate {output.name}",
        f"#   mnc diff {base} {output.name}          # what changes in the network",
        f"#   mnc compile {output.name} --backend torch -o {output.stem}.pt",
        f"extends: {extends}",
        f"name: {spec.name} ({output.stem})",
        "",
    ]
    if projection is not None and strength is not None:
        lines += [
            "# Strength and width (sigma_mm) of an interareal projection SOURCE->TARGET:",
            "# interareal:",
            "#   projections:",
            f'#     "{projection}": {{strength: {strength.strength}, '
            f"sigma_mm: {strength.sigma_mm}}}",
            "",
        ]
    if len(levels) > 2 and removable:
        lines += [
            "# Remove an area, with its populations and every projection from or to it:",
            "# areas:",
            "#   regions:",
            f"#     {removable[0]}: null",
            "",
        ]
    feedback = _feedback_example(spec)
    if feedback is not None:
        lines += [
            "# Run in time, with a feedback projection that arrives one step later (see the",
            "# shipped variant `feedback` for a whole set, with the sources of its values):",
            "# dynamics:",
            "#   steps: 2",
            "#   steps_source: ASSUMED two steps",
            "# interareal:",
            "#   projections:",
            f'#     "{feedback}": {{strength: 1, sigma_mm: 0.1, delay: 1, '
            "source: ASSUMED feedback}",
            "",
        ]
    lines += [
        "# Input size in pixels (grids, channels and kernels are derived again):",
        "# input:",
        f"#   height_px: {spec.input.height_px}",
        f"#   width_px: {spec.input.width_px}",
        "",
        "# Connection masks: another random draw, or another mode",
        "# (gaussian: fixed random masks; none: dense; expected; learnable):",
        "# mask:",
        f"#   seed: {spec.mask.seed + 1}",
        f"#   mode: {spec.mask.mode}",
    ]
    return "\n".join(lines) + "\n"


def _feedback_example(spec: Spec) -> str | None:
    """A feedback projection the base could have: last layer of its highest laminar area onto
    the second layer of its lowest (VISpor5->VISp2/3 in the default spec), if it has none."""
    laminar = {name: region.hierarchy_level for name, region in spec.areas.regions.items()
               if region.laminar}
    if len(set(laminar.values())) < 2:
        return None
    low, high = min(laminar, key=laminar.__getitem__), max(laminar, key=laminar.__getitem__)
    layers = spec.layers.names
    source, target = f"{high}{layers[-1]}", f"{low}{layers[min(1, len(layers) - 1)]}"
    if layers[-1] not in spec.surface_area_mm2.values.get(high, {}):
        return None
    key = f"{source}->{target}"
    return None if key in spec.interareal.projections else key


def check_output_name(output: Path) -> None:
    """A new spec needs a .yaml/.yml name: a bare name would read as a shipped spec's."""
    if output.suffix not in SPEC_SUFFIXES:
        raise UsageError(
            f"{output}: a spec file name ends in {' or '.join(SPEC_SUFFIXES)} (a bare name "
            f"like {output.name!r} means a shipped spec)"
        )
