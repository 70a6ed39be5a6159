"""Neural comparison of compiled networks with the Allen Brain Observatory (optional extra).

::

    Brain Observatory cache (h5py)          specs/mouse.yaml + weights (mnc.compile / mnc.load)
      -> sources.allen.load_natural_scenes    -> model_features.prepare_images (118 scenes)
      or sources.recording_files              -> model_features.summarize_features (streamed)
      -> sources.recordings.NeuralData        -> representation.FeatureSummary (cached)
         (images; stimuli x trials x cells)
      -> regions.group_regions
         (area x Cre line x layer)
                 \\________________________________/
                  rsa (exact RDMs, SSM, noise ceilings, image jackknife)
                  predictivity (cross-validated ridge / PLS, noise-corrected)
                  physiology (sparseness, reliability, Kolmogorov-Smirnov)
                  -> api.run_rsa / api.run_physiology -> CSV, figures, summary.json

Install with ``pip install 'mnc[neuro]'``; rsatoolbox is imported lazily, so the rest of mnc
works without it. allensdk (``pip install 'mnc[allen]'``) is needed only to download.

To try the comparison without data: ``mnc.neuro.synthetic_recordings()`` (or
``mnc rsa tiny --weights untrained --recordings synthetic -o out``) gives synthetic cells whose
responses are a known function of the images.
"""

from typing import Any

__all__ = ["compare_model", "compare_trajectory", "synthetic_recordings"]


def compare_model(module: Any, layers: Any, recordings: Any, **options: Any) -> Any:
    """Compare any ``torch.nn.Module`` with recordings (see ``mnc.neuro.any_model``)."""
    from mnc.neuro.any_model import compare_model as compare

    return compare(module, layers, recordings, **options)


def compare_trajectory(checkpoints: Any, layers: Any, recordings: Any, **options: Any) -> Any:
    """Similarity along training of any module, tested (see ``mnc.neuro.trajectory``)."""
    from mnc.neuro.trajectory import compare_trajectory as compare

    return compare(checkpoints, layers, recordings, **options)


def synthetic_recordings(**options: Any) -> Any:
    """Synthetic ``NeuralData`` with a known answer (see ``mnc.neuro.sources.synthetic``)."""
    from mnc.neuro.sources.synthetic import synthetic_recordings as make

    return make(**options)
