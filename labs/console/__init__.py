"""The lab console: a web page that shows a lab's ensemble live and breaks it on purpose.

``zkops lab ui`` serves it (``server.py``) over the same :class:`~zkops.labs.lab.Lab` API the
``zkops lab`` commands use, so every backend works. The pieces: who may press the buttons
(``access.py``), the ensemble as the page draws it (``view.py``), elections as replayable steps
(``replay.py``), the writer and watch panel (``clients.py``), the lessons' graded histories
(``histories.py``), and the page itself (``static/``: our own HTML, CSS and JavaScript, nothing
fetched from anywhere else, so it works in a classroom without internet).
"""

from __future__ import annotations

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8480
