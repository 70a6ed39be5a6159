"""Pass: width of every projection's Gaussian profile, in pixels of the source grid."""

from __future__ import annotations

import math

from mnc.ir.model import (
    Derivation,
    DraftIR,
    FixedProfile,
    InterarealProfile,
    InterlaminarProfile,
    PopulationDraft,
    ProjectionDraft,
)
from mnc.passes.base import Pass, PassResult


def pixels_per_um(population: PopulationDraft) -> float:
    """Grid side over cortical side: sqrt(neurons / channels) / (sqrt(surface_mm2) * 1000)."""
    assert population.neurons and population.channels and population.surface_area_mm2
    return math.sqrt(population.neurons / population.channels) / (
        math.sqrt(population.surface_area_mm2) * 1000
    )


def mouse_width_um(profile: InterlaminarProfile) -> float:
    """Cat width scaled so the reference pair matches its mouse width."""
    return profile.cat_width_um / profile.cat_reference_width_um * profile.mouse_reference_width_um


class ScaleWidths(Pass):
    """sigma_px from the measured width and the source's pixels per micrometre:

    - interlaminar: width_um = cat_width / cat_width[reference] * mouse_width[reference];
      sigma_px = width_um * pixels_per_um(source)
    - interareal: sigma_px = sigma_mm * 1000 * pixels_per_um(source)
    - fixed: sigma_px as given
    where pixels_per_um = sqrt(neurons / channels) / (sqrt(surface_mm2) * 1000). A projection
    onto a finer grid (``upsample`` > 1) measures its width on the repeated source, that is in
    pixels of the target grid: sigma_px times upsample.
    """

    name = "scale-widths"
    requires = frozenset(
        {
            "population.channels",
            "population.neurons",
            "population.surface_area_mm2",
            "projection.profile",
            "projection.stride",
        }
    )
    provides = frozenset({"projection.sigma_px"})

    def run(self, ir: DraftIR) -> PassResult:
        by_name = {population.name: population for population in ir.populations}
        projections = [
            self._scale(projection, by_name[projection.source]) for projection in ir.projections
        ]
        return PassResult(
            ir.model_copy(update={"projections": projections}), projections != ir.projections
        )

    def _scale(self, projection: ProjectionDraft, source: PopulationDraft) -> ProjectionDraft:
        profile = projection.profile
        if isinstance(profile, FixedProfile):
            derivation = Derivation(
                formula="given",
                inputs={"sigma_px": profile.sigma_px},
                value=profile.sigma_px,
                sources=["fixed_projections"],
            )
        else:
            density = pixels_per_um(source)
            ppu_inputs = {
                "source_neurons": source.neurons,
                "source_channels": source.channels,
                "source_surface_mm2": source.surface_area_mm2,
                "pixels_per_um": density,
            }
            surface_sources = ["neurons", "surface_area_mm2", f"surface_area_mm2.{source.name}"]
            if isinstance(profile, InterlaminarProfile):
                width = mouse_width_um(profile)
                derivation = Derivation(
                    formula="cat_width_um / cat_reference_width_um * mouse_reference_width_um "
                    "* pixels_per_um; pixels_per_um = sqrt(source_neurons / "
                    "source_channels) / (sqrt(source_surface_mm2) * 1000)",
                    inputs={
                        "cat_width_um": profile.cat_width_um,
                        "cat_reference_width_um": profile.cat_reference_width_um,
                        "mouse_reference_width_um": profile.mouse_reference_width_um,
                        "width_um": width,
                        **ppu_inputs,
                    },
                    value=width * density,
                    sources=[
                        "interlaminar.width_um",
                        "interlaminar.mouse_scaling",
                        *surface_sources,
                    ],
                )
            else:
                assert isinstance(profile, InterarealProfile)
                derivation = Derivation(
                    formula="sigma_mm * 1000 * pixels_per_um; pixels_per_um = sqrt(source_neurons"
                    " / source_channels) / (sqrt(source_surface_mm2) * 1000)",
                    inputs={"sigma_mm": profile.sigma_mm, **ppu_inputs},
                    value=profile.sigma_mm * 1000 * density,
                    sources=["interareal", *surface_sources],
                )
        assert isinstance(derivation.value, float | int)
        if projection.upsample != 1:  # measured on the source, counted on the repeated grid
            derivation = Derivation(
                formula=f"({derivation.formula}) * upsample",
                inputs={**derivation.inputs, "source_grid_sigma_px": derivation.value,
                        "upsample": projection.upsample},
                value=derivation.value * projection.upsample,
                sources=derivation.sources,
            )
        assert isinstance(derivation.value, float | int)
        return projection.model_copy(
            update={
                "sigma_px": float(derivation.value),
                "derivations": {**projection.derivations, "sigma_px": derivation},
            }
        )
