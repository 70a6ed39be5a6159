"""Now ``mnc.neuro.sources.recording_files``; this name stays the same module for scripts that
import it (the neural comparison's guide named it before the sources had their package)."""

import sys

from mnc.neuro.sources import recording_files

sys.modules[__name__] = recording_files
