"""Now ``mnc.neuro.sources.synthetic``; this name stays the same module for scripts that
import it (the neural comparison's guide named it before the sources had their package)."""

import sys

from mnc.neuro.sources import synthetic

sys.modules[__name__] = synthetic
