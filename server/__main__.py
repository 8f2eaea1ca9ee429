"""``python -m zkops.server``: the same as the ``zkserver`` command (``start`` re-runs this)."""

import gc

# Importing the server creates tens of thousands of objects and frees few, so the cyclic
# collector would run about forty times for nothing (about a tenth of a start's CPU). It is
# back on once the server's modules are in (app.serve), or at once for the other commands.
gc.disable()

from .cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())
