"""``python -m utils.data``: the datasets' command line (see :func:`utils.data.cli.main`)."""

import sys

from utils.data.cli import main

sys.exit(main())
