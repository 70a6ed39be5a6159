"""Now ``mnc.neuro.sources.recordings``; this name stays the same module for scripts that
import it (the neural comparison's guide named it before the sources had their package)."""

import sys

from mnc.neuro.sources import recordings

sys.modules[__name__] = recordings
