"""allensdk's reader and mnc's h5py reader return the same values from the same cache files.

Runs only where allensdk is installed: a separate environment with allensdk's own pins
(``.ci/run`` builds it); elsewhere the whole module is skipped.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("h5py", reason="needs the neuro extra (h5py)")

import h5py

pytest.importorskip("allensdk", reason="the agreement check needs allensdk (mnc[allen])")

from mnc.neuro.sources.allen import ResponseWindow, quiet_allensdk, trial_responses  # noqa: E402
from mnc.neuro.sources.boc_session import SessionFile, StimulusTable  # noqa: E402
from mnc.neuro.sources.boc_tables import (  # noqa: E402
    cache_layout,
    natural_scenes_experiments,
    read_containers,
)
from mnc.neuro.sources.synthetic import SyntheticSession, write_synthetic_cache  # noqa: E402

pytestmark = pytest.mark.neuro
SESSIONS = (SyntheticSession("VISp", "Cux2", 175, cells=5),
            SyntheticSession("VISp", "Rorb", 275, cells=4),
            SyntheticSession("VISl", "Cux2", 175, cells=3),
            SyntheticSession("VISal", "Rbp4", 375, cells=6),
            SyntheticSession("VISam", "Sst", 275, cells=2))


def _offline_cache(folder: Path) -> Any:
    """allensdk's cache on ``folder``; its one unavoidable server question gets no answer."""
    with quiet_allensdk():
        from allensdk.api.queries.brain_observatory_api import BrainObservatoryApi
        from allensdk.core.brain_observatory_cache import BrainObservatoryCache

    class OfflineApi(BrainObservatoryApi):  # type: ignore[misc]
        def template_query(self, template_name: str, entry_name: str, **kwargs: Any) -> Any:
            if entry_name == "all_eye_mapping_files":
                return []
            raise AssertionError(f"allensdk went to the server for {entry_name}")

        def retrieve_file_over_http(self, url: str, file_path: str, zipped: bool = False
                                    ) -> Any:
            raise AssertionError(f"allensdk tried to download {url}")

    with quiet_allensdk():
        return BrainObservatoryCache(manifest_file=str(folder / "manifest.json"),
                                     api=OfflineApi())


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five sessions; one container, one session and one session's container record failed;
    in one file the presentations sit in a nested group and out of order."""
    folder = tmp_path_factory.mktemp("agreement")
    ids = write_synthetic_cache(folder, sessions=SESSIONS, trials=4, n_images=9,
                                image_height=10, image_width=13, noise_sd=0.5, seed=3)
    containers = json.loads((folder / "experiment_containers.json").read_text())
    experiments = json.loads((folder / "ophys_experiments.json").read_text())
    containers[1]["failed"] = True
    experiments[2]["failed"] = True
    experiments[4]["experiment_container"]["failed"] = True
    (folder / "experiment_containers.json").write_text(json.dumps(containers))
    (folder / "ophys_experiments.json").write_text(json.dumps(experiments))
    with h5py.File(folder / "ophys_experiment_data" / f"{ids[3]}.nwb", "a") as nwb:
        source = "stimulus/presentation/natural_scenes_stimulus"
        order = np.random.default_rng(0).permutation(nwb[f"{source}/data"].shape[0])
        data, duration = nwb[f"{source}/data"][()], nwb[f"{source}/frame_duration"][()]
        del nwb[source]
        nested = nwb.create_group("stimulus/presentation/session_b/natural_scenes_stimulus")
        nested["data"] = data[order]
        nested["frame_duration"] = duration[order]
    _offline_cache(folder)  # lets allensdk write its own manifest, as a user's cache has
    return folder


def _session_files(folder: Path) -> list[Path]:
    return sorted((folder / "ophys_experiment_data").glob("*.nwb"))


def test_session_files_agree(cache: Path) -> None:
    with quiet_allensdk():
        from allensdk.core.brain_observatory_nwb_data_set import BrainObservatoryNwbDataSet
    for path in _session_files(cache):
        with quiet_allensdk():
            reference = BrainObservatoryNwbDataSet(str(path))
            timestamps, dff = reference.get_dff_traces()
            ids = reference.get_cell_specimen_ids()
            table = reference.get_stimulus_table("natural_scenes")
            template = reference.get_stimulus_template("natural_scenes")
        with SessionFile(path) as session:
            own_timestamps, own_dff = session.dff()
            own_table = session.natural_scenes_table()
            np.testing.assert_array_equal(own_timestamps, timestamps)
            np.testing.assert_array_equal(own_dff, dff)
            np.testing.assert_array_equal(session.cell_ids(), ids)
            np.testing.assert_array_equal(session.template(), template)
        for column in ("frame", "start", "end"):
            np.testing.assert_array_equal(getattr(own_table, column),
                                          table[column].to_numpy(), err_msg=f"{path} {column}")
        # The responses computed from either reader's values are the same.
        reference_table = StimulusTable(*(table[c].to_numpy() for c in ("frame", "start",
                                                                         "end")))
        window = ResponseWindow(0.3, baseline_s=0.1)
        np.testing.assert_array_equal(
            trial_responses(own_timestamps, own_dff, own_table, window, str(path)),
            trial_responses(np.asarray(timestamps), np.asarray(dff), reference_table, window,
                            str(path)))


def test_tables_and_selection_agree(cache: Path) -> None:
    reference = _offline_cache(cache)
    layout = cache_layout(cache)
    with quiet_allensdk():
        all_containers = reference.get_experiment_containers(include_failed=True)
    own = {c.id: c for c in read_containers(layout.containers)}
    assert set(own) == {c["id"] for c in all_containers}
    for container in all_containers:
        mine = own[container["id"]]
        assert (mine.area, mine.cre_line, mine.depth_um, mine.failed) == (
            container["targeted_structure"], container["cre_line"],
            container["imaging_depth"], container["failed"])
    selections: list[dict[str, Any]] = [
        {}, {"targeted_structures": ["VISp"]}, {"cre_lines": ["cux2-creert2"]},
        {"imaging_depths": [275]}, {"targeted_structures": ["VISl", "VISam"],
                                    "cre_lines": ["Sst-IRES-Cre", "Cux2-CreERT2"]}]
    for selection in selections:
        with quiet_allensdk(), warnings.catch_warnings():
            containers = reference.get_experiment_containers(**selection)
            ids = [c["id"] for c in containers]
            expected = reference.get_ophys_experiments(
                experiment_container_ids=ids, stimuli=["natural_scenes"]) if ids else []
        mine = natural_scenes_experiments(layout, areas=selection.get("targeted_structures"),
                                          cre_lines=selection.get("cre_lines"),
                                          depths_um=selection.get("imaging_depths"))
        assert sorted(e["id"] for e in expected) == sorted(e.id for e in mine), selection
        by_id = {e["id"]: e for e in expected}
        for experiment in mine:
            theirs = by_id[experiment.id]
            assert (experiment.container_id, experiment.area, experiment.cre_line,
                    experiment.depth_um, experiment.session_type) == (
                theirs["experiment_container_id"], theirs["targeted_structure"],
                theirs["cre_line"], theirs["imaging_depth"], theirs["session_type"])
            with quiet_allensdk():
                path = reference.get_cache_path(None, reference.EXPERIMENT_DATA_KEY,
                                                experiment.id)
            assert Path(path).resolve() == layout.session_file(experiment.id).resolve()


def test_download_fetches_missing_sessions_through_allensdk(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--download asks allensdk for the missing session file, then reads it with h5py."""
    import shutil

    from allensdk.api.queries.brain_observatory_api import BrainObservatoryApi

    from mnc.neuro.sources.allen import load_natural_scenes

    partial = tmp_path / "partial"
    shutil.copytree(cache, partial)
    missing = _session_files(partial)[0]
    stash = tmp_path / missing.name
    missing.rename(stash)
    asked: list[str] = []

    def template_query(self: Any, template: str, entry: str, **kwargs: Any) -> Any:
        assert entry == "ophys_experiment_data", entry
        return [{"download_link": f"/data/{kwargs['ophys_experiment_id']}.nwb"}]

    def retrieve_file_over_http(self: Any, url: str, file_path: str, zipped: bool = False
                                ) -> None:
        asked.append(url)
        shutil.copyfile(stash, file_path)

    monkeypatch.setattr(BrainObservatoryApi, "template_query", template_query)
    monkeypatch.setattr(BrainObservatoryApi, "retrieve_file_over_http", retrieve_file_over_http)
    data = load_natural_scenes(partial, allow_download=True)
    assert len(asked) == 1 and asked[0].endswith(missing.name)
    assert missing.is_file() and missing.stem in data.sessions
    np.testing.assert_array_equal(data.responses, load_natural_scenes(cache).responses)
