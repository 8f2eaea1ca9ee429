"""reconfig requests get Apache's refusals in Apache's order: disabled, then the config version,
then the arguments, then the ACL of /zookeeper/config (only a super user may write it);
membership changes themselves are not implemented and say so."""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoAuthError,
    UnimplementedError,
    ZookeeperError,
)

from tests.support.ourzk import InProcessServer
from zkops.server.acl import digest

OBSERVER = "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456"


def test_disabled_by_default():
    with InProcessServer() as s:
        zk = KazooClient(s.address)
        zk.start()
        try:
            with pytest.raises(ZookeeperError) as exc:
                zk.reconfig(joining=OBSERVER, leaving=None, new_members=None)
            assert type(exc.value).__name__ == "ReconfigDisabledError" or exc.value.code == -123
        finally:
            zk.stop()


def test_refusals_in_apaches_order():
    with InProcessServer(reconfig_enabled=True, super_digest=digest("super:test")) as s:
        anyone = KazooClient(s.address)
        admin = KazooClient(s.address, auth_data=[("digest", "super:test")])
        anyone.start()
        admin.start()
        try:
            with pytest.raises(NoAuthError):
                anyone.reconfig(joining=OBSERVER, leaving=None, new_members=None)
            with pytest.raises(BadArgumentsError):  # arguments before the ACL, as kazoo's test_bad_input shows
                anyone.reconfig(joining="some thing", leaving=None, new_members=None)
            with pytest.raises(BadVersionError):  # and the version before both
                anyone.reconfig(joining="some thing", leaving=None, new_members=None, from_config=5)
            with pytest.raises(BadArgumentsError):
                admin.reconfig(joining="some thing", leaving=None, new_members=None)
            with pytest.raises(BadArgumentsError):
                admin.reconfig(joining=None, leaving="not-a-number", new_members=None)
            with pytest.raises(BadVersionError):
                admin.reconfig(joining=OBSERVER, leaving=None, new_members=None, from_config=5)
            with pytest.raises(UnimplementedError):
                admin.reconfig(joining=OBSERVER, leaving=None, new_members=None)
        finally:
            anyone.stop()
            admin.stop()
