"""Numbers as Apache ZooKeeper's four-letter words and mntr print them (Java's formatting).

A leaf module: ``fourletter`` (srvr, stat) and ``mntr`` both read it.
"""

from __future__ import annotations


def java_double(v: float) -> str:
    """A double as Java's Double.toString prints it: plain from 1e-3 up to 1e7 (always with a
    fraction digit), else "1.0E-4", "1.2345678E7"; the shortest digits that read back."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0.0" if str(v).startswith("-") else "0.0"
    if 1e-3 <= abs(v) < 1e7:
        text = repr(v)  # fixed notation in this range
        return text if "." in text or "e" in text else text + ".0"
    from decimal import Decimal

    sign, digits, exponent = Decimal(repr(v)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp = len(digits) + int(exponent) - 1
    return f"{'-' if sign else ''}{ds[0]}.{ds[1:] or '0'}E{exp}"


__all__ = ["java_double"]
