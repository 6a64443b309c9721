"""``python -m rtsep``: the same command line as ``rtsep``."""

import sys

from rtsep.cli.main import main

sys.exit(main())
