"""``python -m zkops.server``: the same as the ``zkserver`` command (``start`` re-runs this)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
