"""Neural comparison of compiled networks with the Allen Brain Observatory (optional extra).

::

    Brain Observatory cache (allensdk)      specs/mouse.yaml + weights (mnc.compile / mnc.load)
      -> allen.load_natural_scenes            -> model_features.prepare_images (118 scenes)
         (trials x images x cells, dF/F)      -> model_features.summarize_features (streamed)
      -> regions.group_regions                -> representation.FeatureSummary (cached)
         (area x Cre line x layer)
                 \\________________________________/
                  rsa (rsatoolbox RDMs, SSM, noise ceilings, bootstrap)
                  predictivity (cross-validated ridge / PLS, noise-corrected)
                  physiology (sparseness, reliability, Kolmogorov-Smirnov)
                  -> api.run_rsa / api.run_physiology -> CSV, figures, summary.json

Install with ``pip install 'mnc[neuro]'``; allensdk and rsatoolbox are imported lazily, so the
rest of mnc works without them.
"""
