from __future__ import annotations

import pytest

from mnc.neuro.layers import cre_short_name, layer_for_recording, population_for

pytestmark = pytest.mark.neuro


@pytest.mark.parametrize(("cre", "depth", "layer"), [
    ("Cux2-CreERT2", 175, "2/3"), ("Cux2-CreERT2", 275, "4"), ("Cux2-CreERT2", 375, "4"),
    ("Rorb-IRES2-Cre", 175, "4"), ("Scnn1a-Tg3-Cre", 350, "4"), ("Nr5a1-Cre", 250, "4"),
    ("Rbp4-Cre_KL100", 175, "5"), ("Tlx3-Cre_PL56", 375, "5"), ("Ntsr1-Cre_GN220", 550, "6"),
    ("Emx1-IRES-Cre", 175, "2/3"), ("Emx1-IRES-Cre", 275, "4"), ("Emx1-IRES-Cre", 375, "5"),
    ("Sst-IRES-Cre", 350, "5"), (None, 600, "6"),
])
def test_layer_from_cre_line_and_depth(cre: str | None, depth: int, layer: str) -> None:
    assert layer_for_recording(cre, depth) == layer


def test_population_lookup_uses_area_and_layer(fake_loaded) -> None:
    populations = fake_loaded.ir.populations
    assert population_for(populations, "VISp", "2/3") == "VISp2/3"
    assert population_for(populations, "VISam", "2/3") is None  # area not in MouseNet
    assert population_for(populations, "VISp", "6") is None
    assert cre_short_name("Rbp4-Cre_KL100") == "Rbp4"
