"""Population names: splitting area and layer, expanding areas given as sources."""

from __future__ import annotations

import pytest

from mnc.errors import UserFileError
from mnc.measure.names import expand_sources, split_list, split_population
from mnc.measure.structures import StructureTree


@pytest.mark.parametrize("name, split", [("VISp2/3", ("VISp", "2/3")), ("VISpl4", ("VISpl", "4")),
                                         ("VISli5", ("VISli", "5")), ("LGNd", ("LGNd", None)),
                                         ("VISp6a", ("VISp", "6a")), ("VISp", ("VISp", None))])
def test_split_population(name: str, split: tuple[str, str | None]) -> None:
    assert split_population(name) == split


def test_expand_sources() -> None:
    tree = StructureTree([{"id": i, "acronym": a, "parent_structure_id": None}
                          for i, a in enumerate(["VISp", "VISp4", "VISp2/3", "VISp5", "LGNd"])])
    assert expand_sources(["VISp", "VISp4", "LGNd"], tree) == ["VISp4", "VISp2/3", "VISp5",
                                                               "LGNd"]
    assert expand_sources(["VISp"], tree, ["2/3"]) == ["VISp2/3"]
    assert expand_sources(["VISp"], tree, []) == ["VISp"]
    with pytest.raises(UserFileError, match="'VISp6a'"):
        expand_sources(["VISp"], tree, ["6a"])
    assert split_list(" VISl4, ,VISal4 ") == ["VISl4", "VISal4"]
