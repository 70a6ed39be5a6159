"""``python -m mnc`` (and ``torchrun -m mnc``) runs the command line."""

import sys

from mnc.cli.main import main

sys.exit(main())
