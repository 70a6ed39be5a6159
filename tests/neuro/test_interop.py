"""rsatoolbox and xarray both ways: their datasets as recordings, a report's RDMs as
rsatoolbox RDMs and labelled xarray arrays, anything else one clear error; compare_model
leaves the user's module in the mode it had."""

from __future__ import annotations

import numpy as np
import pytest

from mnc.errors import UserFileError

torch = pytest.importorskip("torch")
rsatoolbox = pytest.importorskip("rsatoolbox", reason="needs the neuro extra (rsatoolbox)")
pytest.importorskip("xarray", reason="needs the neuro extra (xarray)")
pytest.importorskip("pandas", reason="needs the neuro extra (pandas)")

from mnc.neuro import compare_model  # noqa: E402
from mnc.neuro.api import AnalysisOptions  # noqa: E402
from mnc.neuro.interop import from_rsatoolbox  # noqa: E402
from mnc.neuro.model_features import Preprocess  # noqa: E402
from mnc.neuro.sources.recording_files import to_xarray  # noqa: E402
from tests.neuro.small_models import build, small_recordings  # noqa: E402

pytestmark = pytest.mark.neuro
FAST = AnalysisOptions(methods=("spearman",), n_boot=4, n_splits=2, regressions=())


def as_rsatoolbox(data) -> object:  # noqa: ANN001
    """The recordings as an rsatoolbox Dataset: one observation per (stimulus, trial)."""
    stimuli, trials, _ = data.responses.shape
    return rsatoolbox.data.Dataset(
        data.responses.reshape(stimuli * trials, -1),
        descriptors={"images": data.images},
        obs_descriptors={"stimulus": np.repeat(np.arange(stimuli), trials)},
        channel_descriptors={
            "area": list(data.area),
            "layer": list(data.layer),
            "cre_line": list(data.cre_line),
        },
    )


def _compare(recordings, module=None):  # noqa: ANN001, ANN202
    torch.manual_seed(0)
    return compare_model(
        build() if module is None else module,
        ["1", "4"],
        recordings,
        label="small",
        preprocess=Preprocess(16, 16),
        options=FAST,
    )


@pytest.fixture(scope="module")
def reference():  # noqa: ANN201
    data = small_recordings()
    return data, _compare(data)


def test_rsatoolbox_and_xarray_datasets_give_the_same_tables(reference):
    data, report = reference
    expected = report.tables["rsa"].drop(columns=["model"])
    for recordings in (as_rsatoolbox(data), to_xarray(data)):
        got = _compare(recordings).tables["rsa"].drop(columns=["model"])
        assert got.equals(expected), type(recordings)


def test_an_rsatoolbox_dataset_converts_trials_and_cells():
    data = small_recordings()
    converted = from_rsatoolbox(as_rsatoolbox(data))
    np.testing.assert_array_equal(converted.responses, data.responses)
    assert list(converted.area) == list(data.area) and converted.images.shape == data.images.shape


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"descriptors": {}}, r"descriptors\['images'\] is missing"),
        ({"obs_descriptors": {"trial": [0]}}, r"obs_descriptors\['stimulus'\] is missing.*trial"),
        ({"channel_descriptors": {"layer": ["4"]}}, r"channel_descriptors\['area'\] is missing"),
        ({"obs_descriptors": {"stimulus": [99]}}, r"indices must lie in 0\.\.2"),
    ],
)
def test_a_malformed_rsatoolbox_dataset_gets_one_message(edit, message):
    arguments = {
        "descriptors": {"images": np.zeros((3, 4, 4))},
        "obs_descriptors": {"stimulus": [0]},
        "channel_descriptors": {"area": ["VISp"], "layer": ["4"]},
        **edit,
    }
    dataset = rsatoolbox.data.Dataset(np.ones((1, 1)), **arguments)
    with pytest.raises(UserFileError, match=message):
        from_rsatoolbox(dataset)


def test_anything_else_is_one_clear_error():
    with pytest.raises(UserFileError, match="got a builtins.dict; expected NeuralData"):
        _compare({"responses": []})


def test_report_rdms_as_rsatoolbox_equal_rsatoolbox_own_and_the_xarray_ones(reference):
    _, report = reference
    rdms = report.to_rsatoolbox()
    assert rdms.dissimilarity_measure == "correlation"
    assert rdms.rdm_descriptors["kind"] == ["model", "model"] + ["neural"] * 3
    assert rdms.rdm_descriptors["name"][:2] == ["1", "4"] and set(
        rdms.rdm_descriptors["model"]
    ) == {"small"}
    assert rdms.pattern_descriptors["stimulus"] == list(range(30))
    assert rdms.rdm_descriptors["population"] == ["1", "4", "", "", ""]
    assert rdms.rdm_descriptors["region"][:2] == ["", ""] and all(
        rdms.rdm_descriptors["region"][2:]
    )
    model_only = rdms.subset("kind", "model")
    assert model_only.n_rdm == 2
    first = report.summaries["1"].correlation_patterns()
    own = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(first), method="correlation")
    np.testing.assert_allclose(rdms.get_matrices()[0], own.get_matrices()[0], atol=1e-12)
    arrays = report.rdms()
    np.testing.assert_allclose(arrays["model"].values, rdms.get_matrices()[:2], atol=1e-9)
    np.testing.assert_allclose(arrays["neural"].values, rdms.get_matrices()[2:], atol=1e-9)
    for name in ("model", "neural"):
        assert arrays[name].attrs["dissimilarity"] == "correlation"
        assert arrays[name].attrs["model"] == "small"
    assert list(arrays["image"].values) == list(range(30))


@pytest.mark.parametrize("training", [True, False])
def test_compare_model_leaves_the_module_in_its_mode(reference, training):
    data, _ = reference
    module = build().train(training)
    module[1].train(not training)  # a submodule in the other mode stays so too
    _compare(data, module)
    assert module.training is training and module[1].training is not training


def test_neural_data_repr_is_one_short_line():
    text = repr(small_recordings())
    assert len(text) < 200 and "\n" not in text and "30 stimuli x 4 trials" in text
