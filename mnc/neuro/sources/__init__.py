"""Where recorded responses come from, each read into one in-memory form, ``NeuralData``
(``recordings``):

- ``allen``: natural-scene responses from a local Allen Brain Observatory cache, read with
  h5py (``boc_tables``: the cache's JSON tables; ``boc_session``: one session's NWB file;
  ``boc_events``: its detected events), with per-session responses kept in the cache folder
  (``cache_files``);
- ``recording_files``: ``NeuralData`` to and from ``.npz`` and NetCDF files;
- ``synthetic``: synthetic cells with a known answer, in memory or as a small cache in the
  Brain Observatory layout.

Sources know nothing of models or analyses (a test keeps them below the rest of
``mnc.neuro``); choosing among them for a comparison is ``mnc.neuro.neural_inputs``.
"""
