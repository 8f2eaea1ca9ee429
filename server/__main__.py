"""python -m zkops.server: the same as the zkserver command."""

from .cli import main

raise SystemExit(main())
