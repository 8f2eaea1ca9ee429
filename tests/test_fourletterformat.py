"""Numbers in srvr/stat/mntr as Java prints a double (the expected strings are what a JVM's
Double.toString printed for the same values)."""

from __future__ import annotations

import pytest

from zkops.server.fourletterformat import java_double

JAVA = [(0.0, "0.0"), (4.125, "4.125"), (0.3333, "0.3333"), (1e-4, "1.0E-4"), (2e-4, "2.0E-4"),
        (0.001, "0.001"), (1234567.0, "1234567.0"), (12345678.0, "1.2345678E7"), (1e7, "1.0E7"),
        (9999999.5, "9999999.5"), (0.5, "0.5"), (7.5, "7.5"), (123.0, "123.0"), (-0.0, "-0.0"),
        (1.5e-5, "1.5E-5"), (0.0526, "0.0526"), (1234.5678, "1234.5678"), (98765432.1234, "9.87654321234E7")]


@pytest.mark.parametrize(("value", "java"), JAVA)
def test_a_double_prints_as_java_prints_it(value, java):
    assert java_double(value) == java


def test_srvr_prints_an_average_latency_of_zero_as_apache_does():
    from types import SimpleNamespace

    from zkops.server import fourletter
    from zkops.server.servermode import ServerMode

    s = SimpleNamespace(min_latency=0, avg_latency=0.0, max_latency=0, packets_received=0, packets_sent=0,
                        connections=list, outstanding=0, last_processed_zxid=0, mode=lambda: ServerMode.STANDALONE,
                        node_count=5, proposal_sizes=lambda: None)
    assert "Latency min/avg/max: 0/0.0/0\n" in fourletter.srvr(s)  # type: ignore[arg-type]
    s.avg_latency = 2 / 3
    assert "Latency min/avg/max: 0/0.6667/0\n" in fourletter.srvr(s)  # type: ignore[arg-type]
