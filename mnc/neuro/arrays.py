"""RDMs as labelled arrays (xarray, optional): dims (population | region, image, image2).

The model's RDMs (one per population) and the recorded regions' RDMs (trial-averaged) share
the image coordinates, so ``ds.model.sel(population="VISp4")`` and
``ds.neural.sel(region="VISp Cux2 L2/3")`` line up for any further analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mnc.errors import UserFileError
from mnc.neuro.regions import Region
from mnc.neuro.representation import FeatureSummary


def _xarray() -> Any:
    try:
        import xarray
    except ImportError as error:
        raise UserFileError(f"RDM arrays need xarray ({error}); pip install xarray") from None
    return xarray


def rdm_dataset(summaries: Mapping[str, FeatureSummary], regions: Sequence[Region],
                label: str = "model") -> Any:
    """xarray Dataset with ``model`` (population, image, image2) and ``neural`` (region, ...).

    Dissimilarity is 1 - Pearson correlation between the patterns two images evoke
    (rsatoolbox's ``correlation``); ``image`` and ``image2`` are the images' stimulus
    indices, and every DataArray says what it holds in its attrs.
    """
    xarray = _xarray()
    names = list(summaries)
    model = np.stack([1.0 - summaries[n].pattern_correlation() for n in names]) if names \
        else np.zeros((0, 0, 0))
    neural = []
    for region in regions:
        responses = region.mean_responses()
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = np.corrcoef(responses)
        neural.append(1.0 - np.nan_to_num(correlation, nan=0.0))
    images = np.arange(model.shape[1] if names else (neural[0].shape[0] if neural else 0))
    common = {"dissimilarity": "correlation", "units": "1 - Pearson r", "model": label}
    data = {"model": (("population", "image", "image2"), model,
                      {**common, "long_name": "model RDM of each population's responses"})}
    if neural:
        data["neural"] = (("region", "image", "image2"), np.stack(neural),
                          {**common, "long_name": "neural RDM of each region's trial-averaged "
                                                  "responses"})
    dataset = xarray.Dataset(data, coords={"population": names, "image": images,
                                           "image2": images,
                                           "region": [r.label for r in regions]},
                             attrs={**common, "title": f"RDMs of {label} and recorded regions"})
    dataset["image"].attrs["long_name"] = "stimulus index (row)"
    dataset["image2"].attrs["long_name"] = "stimulus index (column)"
    return dataset
