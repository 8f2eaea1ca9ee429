"""A differential fuzzer for the client port: the same request sequences to Apache 3.8 and zkops.

``generator`` makes seeded sequences, ``executor`` runs one against a server and records what
came back, ``differential`` compares two runs, shrinks a failing sequence and replays kept cases
(``python -m tests.fuzz.differential --seed N --steps M``).
"""
