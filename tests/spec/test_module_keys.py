"""Names that would share a module key ("/" -> "_", "->" -> "__") are refused at validation.

Without the check such a spec validated and then built a network with one layer standing
for two populations (or projections), silently.
"""

from __future__ import annotations

import pytest

from mnc.compiler import compile_ir
from mnc.errors import SpecError
from tests.conftest import DEFAULT_SPEC, TINY_SPEC


def _problems(path) -> list[str]:  # noqa: ANN001
    with pytest.raises(SpecError) as caught:
        compile_ir(path)
    return [str(problem) for problem in caught.value.problems]


def test_area_named_like_a_laminar_population_is_refused(write_variant):
    path = write_variant({
        "areas": {"regions": {"VISp2_3": {"hierarchy_level": 1, "pixels_per_degree": 1,
                                          "laminar": False}}},
        "neurons": {"counts": {"VISp2_3": 20000}},
        "fixed_projections": {"projections": {
            "LGNd->VISp2_3": {"sigma_px": 1, "peak_probability": 1}}},
    }, base=TINY_SPEC)
    [message] = _problems(path)
    line = path.read_text().splitlines().index("    VISp2_3:") + 1
    assert message.startswith(f"{path}:{line}:")
    assert "'VISp2_3'" in message and "'VISp2/3'" in message
    assert f"areas.regions.VISp, {DEFAULT_SPEC}:" in message
    assert "module key 'VISp2_3'" in message


def test_projections_whose_keys_meet_at_the_double_underscore_are_refused(write_variant):
    area = {"hierarchy_level": 1, "pixels_per_degree": 1, "laminar": False}
    fixed = {"sigma_px": 1, "peak_probability": 1}
    path = write_variant({
        "areas": {"regions": {"LGNd__Q": area, "Q__R": area, "R": area}},
        "neurons": {"counts": {"LGNd__Q": 20000, "Q__R": 20000, "R": 20000}},
        "fixed_projections": {"projections": {
            "input->LGNd__Q": fixed, "LGNd->Q__R": fixed, "LGNd__Q->R": fixed}},
    }, base=TINY_SPEC)
    [message] = _problems(path)
    assert "LGNd__Q->R" in message and "LGNd->Q__R" in message
    assert "module key 'LGNd__Q__R'" in message
