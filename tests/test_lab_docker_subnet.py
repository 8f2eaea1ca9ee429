"""The docker lab's network never takes a subnet the host already routes.

The lab reaches its containers from the host by their addresses, so a /24 that some other
route on the host covers (a bridge another engine left behind, a VPN) would send the lab's
traffic elsewhere and the lab would look dead.
"""

from __future__ import annotations

import ipaddress
import random
import struct

import pytest

from zkops.labs.docker import lab_subnets, parse_proc_net_route
from zkops.labs.model import LabError


def _hex(addr: str) -> str:
    """An address as /proc/net/route prints it: the network-order bytes read as a native int."""
    return f"{struct.unpack('=I', ipaddress.IPv4Address(addr).packed)[0]:08X}"


def _table(*routes: tuple[str, str, str]) -> str:
    head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    rows = "".join(f"{dev}\t{_hex(dest)}\t00000000\t0001\t0\t0\t0\t{_hex(mask)}\t0\t0\t0\n"
                   for dev, dest, mask in routes)
    return head + rows


def test_the_kernels_route_table_is_read_as_networks():
    text = _table(("eth0", "0.0.0.0", "0.0.0.0"), ("br-1", "172.30.7.0", "255.255.255.0"),
                  ("docker0", "172.17.0.0", "255.255.0.0"))
    assert parse_proc_net_route(text) == [ipaddress.IPv4Network("172.30.7.0/24"),
                                          ipaddress.IPv4Network("172.17.0.0/16")]


def test_a_routed_subnet_is_never_offered():
    routed = [ipaddress.IPv4Network("172.30.7.0/24"), ipaddress.IPv4Network("172.30.128.0/25")]
    offered = lab_subnets(routed, random.Random(1))
    thirds = {int(str(net).split(".")[2]) for net in offered}
    assert 7 not in thirds and 128 not in thirds
    assert thirds == set(range(1, 255)) - {7, 128}
    assert all(not net.overlaps(r) for net in offered for r in routed)


def test_a_host_that_routes_the_whole_range_gets_a_clear_error():
    with pytest.raises(LabError, match="172.30.0.0/16"):
        lab_subnets([ipaddress.IPv4Network("172.16.0.0/12")], random.Random(1))


def test_the_order_of_the_candidates_comes_from_the_generator():
    a = lab_subnets([], random.Random(1))
    b = lab_subnets([], random.Random(2))
    assert sorted(a) == sorted(b) and a != b
