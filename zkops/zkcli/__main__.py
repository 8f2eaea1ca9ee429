"""``python -m zkops.zkcli``: the same as the ``zkcli`` command."""

import sys

from .shell import main

sys.exit(main())
