"""The one table of four-letter words: which exist, which Apache ZooKeeper 3.8 knows,
which the default whitelist allows, and which answer while the server is not serving.

A leaf module (no imports from the package): the config's whitelist, the connection's
detection of a 4lw and the answers in ``fourletter`` all read it.
"""

from __future__ import annotations

from typing import NamedTuple


class FourLetterWord(NamedTuple):
    name: str
    apache: bool  # Apache ZooKeeper 3.8 knows it ("*" in its whitelist allows it)
    default: bool  # in zkops' default whitelist
    when_not_serving: bool  # answered while the server is not serving requests


# Apache's default whitelist is "srvr" alone. Health checks and monitoring need more, and the
# default words are read-only and cheap; the ones that walk every watch or session (wchc, wchp,
# dump) or change state (crst, srst, stmk) stay off. zkops adds "elec" (the election timeline):
# allowed by "*" or by name, never by default.
TABLE: tuple[FourLetterWord, ...] = (
    FourLetterWord("ruok", apache=True, default=True, when_not_serving=True),
    FourLetterWord("srvr", apache=True, default=True, when_not_serving=False),
    FourLetterWord("stat", apache=True, default=True, when_not_serving=False),
    FourLetterWord("mntr", apache=True, default=True, when_not_serving=True),
    FourLetterWord("conf", apache=True, default=True, when_not_serving=True),
    FourLetterWord("cons", apache=True, default=True, when_not_serving=False),
    FourLetterWord("crst", apache=True, default=False, when_not_serving=False),
    FourLetterWord("srst", apache=True, default=False, when_not_serving=False),
    FourLetterWord("envi", apache=True, default=True, when_not_serving=True),
    FourLetterWord("dirs", apache=True, default=True, when_not_serving=False),
    FourLetterWord("wchs", apache=True, default=True, when_not_serving=False),
    FourLetterWord("wchc", apache=True, default=False, when_not_serving=False),
    FourLetterWord("wchp", apache=True, default=False, when_not_serving=False),
    FourLetterWord("dump", apache=True, default=False, when_not_serving=False),
    FourLetterWord("isro", apache=True, default=True, when_not_serving=True),
    FourLetterWord("gtmk", apache=True, default=False, when_not_serving=False),
    FourLetterWord("stmk", apache=True, default=False, when_not_serving=False),
    FourLetterWord("elec", apache=False, default=False, when_not_serving=True),
)

ALL_WORDS: tuple[str, ...] = tuple(w.name for w in TABLE)
APACHE_WORDS: frozenset[str] = frozenset(w.name for w in TABLE if w.apache)
DEFAULT_WORDS: frozenset[str] = frozenset(w.name for w in TABLE if w.default)
NOT_SERVING_WORDS: frozenset[str] = frozenset(w.name for w in TABLE if w.when_not_serving)
WIRE_WORDS: frozenset[bytes] = frozenset(w.encode() for w in ALL_WORDS)  # the first 4 bytes of a connection

__all__ = ["ALL_WORDS", "APACHE_WORDS", "DEFAULT_WORDS", "NOT_SERVING_WORDS", "TABLE", "WIRE_WORDS", "FourLetterWord"]
