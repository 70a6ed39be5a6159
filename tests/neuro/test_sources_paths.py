"""The recording sources live in ``mnc.neuro.sources``; the module paths the guide named before
are the same modules, so scripts (and monkeypatching through them) keep working."""

from __future__ import annotations

import importlib

import pytest

import mnc.neuro

pytestmark = pytest.mark.neuro
MOVED = ("allen", "recordings", "recording_files", "synthetic")


@pytest.mark.parametrize("name", MOVED)
def test_an_old_path_is_the_same_module(name):
    pytest.importorskip("h5py", reason="needs the neuro extra (h5py)")
    old = importlib.import_module(f"mnc.neuro.{name}")
    assert old is importlib.import_module(f"mnc.neuro.sources.{name}")


def test_the_package_offers_what_it_did():
    assert set(mnc.neuro.__all__) == {"compare_model", "compare_trajectory",
                                      "synthetic_recordings"}
    data = mnc.neuro.synthetic_recordings(n_images=6, seed=0)
    assert data.responses.shape[0] == 6
