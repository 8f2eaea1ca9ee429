"""SASL DIGEST-MD5 for clients (the ``sasl`` request), with users from a JAAS-style file.

Apache ZooKeeper reads its users from the JAAS login configuration named by
``-Djava.security.auth.login.config`` (section ``Server``, or the one named by
``zookeeper.sasl.serverconfig``)::

    Server {
        org.apache.zookeeper.server.auth.DigestLoginModule required
        user_super="super_secret"
        user_bob="bobs_password";
    };

zkops reads the same file, found through the same property (in SERVER_JVMFLAGS/JVMFLAGS or
as a zoo.cfg key). A session that completes the exchange is authenticated as
``sasl:<user>``; a wrong password is AUTHFAILED and the connection closes, as in Apache.

The exchange is RFC 2831's with qop=auth: the server's challenge, the client's response
proving it knows H(user:realm:password), the server's rspauth proving the same.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

REALM = "zk-sasl-md5"  # Apache hard-codes it for DIGEST-MD5


class SaslError(Exception):
    """The client's SASL message is malformed or its proof is wrong."""


_USER = re.compile(r'user_([^\s=]+)\s*=\s*"((?:[^"\\]|\\.)*)"')
_SECTION = re.compile(r"(\w+)\s*\{(.*?)\}\s*;", re.S)


def load_users(path: str | Path, section: str = "Server") -> dict[str, str]:
    """user -> password from the ``section`` of a JAAS file (DigestLoginModule's ``user_NAME``)."""
    text = Path(path).read_text()
    for name, body in _SECTION.findall(text):
        if name == section:
            return {u: p.replace('\\"', '"') for u, p in _USER.findall(body)}
    return {}


def users_from_environment(raw: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The SASL users configured the way Apache configures them; empty when there are none."""
    from .config import jvm_properties

    props = {k: v for k, (v, _) in jvm_properties(environ if environ is not None else os.environ).items()}
    path = raw.get("java.security.auth.login.config") or props.get("java.security.auth.login.config")
    if not path or not Path(path).is_file():
        return {}
    section = raw.get("zookeeper.sasl.serverconfig") or props.get("zookeeper.sasl.serverconfig") or "Server"
    return load_users(path, section)


def _parse(message: bytes) -> dict[str, str]:
    """``key=value,key="quoted, value"`` into a dict (RFC 2831 section 7.1)."""
    out: dict[str, str] = {}
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise SaslError("DIGEST-MD5 message is not UTF-8") from None
    pos = 0
    while pos < len(text):
        m = re.compile(r'\s*([A-Za-z-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^,]*)\s*(,|$)').match(text, pos)
        if m is None:
            raise SaslError("malformed DIGEST-MD5 message")
        value = m.group(3) if m.group(3) is not None else m.group(2)
        out[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
        if m.group(4) == "":
            break
    return out


def _h(data: bytes) -> bytes:
    return hashlib.md5(data).digest()  # noqa: S324 - DIGEST-MD5 is MD5 by definition


def _hex(data: bytes) -> str:
    return data.hex()


class DigestMd5Server:
    """One session's exchange: ``step(token)`` -> (reply token, authenticated user or None)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users
        self.nonce = secrets.token_urlsafe(24)
        self.stage = 0

    def step(self, token: bytes) -> tuple[bytes, str | None]:
        if self.stage == 0:  # DIGEST-MD5 is server-first: the client's first token is empty
            self.stage = 1
            challenge = (f'realm="{REALM}",nonce="{self.nonce}",qop="auth",charset=utf-8,'
                         f"algorithm=md5-sess")
            return challenge.encode(), None
        if self.stage == 1:
            self.stage = 2
            return self._response(token)
        if self.stage == 2 and not token:  # the client acknowledges rspauth
            return b"", None
        raise SaslError("unexpected SASL message after the exchange ended")

    def _response(self, token: bytes) -> tuple[bytes, str]:
        f = _parse(token)
        user = f.get("username")
        if user is None or f.get("nonce") != self.nonce or "cnonce" not in f or "response" not in f:
            raise SaslError("incomplete DIGEST-MD5 response")
        if f.get("qop", "auth") != "auth":
            raise SaslError(f"qop {f.get('qop')} is not offered")
        password = self.users.get(user)
        if password is None:
            raise SaslError(f"unknown user {user}")
        realm, nc, cnonce, uri = f.get("realm", REALM), f.get("nc", "00000001"), f["cnonce"], f.get("digest-uri", "")
        a1 = _h(f"{user}:{realm}:{password}".encode()) + f":{self.nonce}:{cnonce}".encode()
        if f.get("authzid"):
            a1 += f":{f['authzid']}".encode()
        ha1 = _hex(_h(a1))

        def kd(a2: str) -> str:
            return _hex(_h(f"{ha1}:{self.nonce}:{nc}:{cnonce}:auth:{_hex(_h(a2.encode()))}".encode()))

        if not secrets.compare_digest(kd(f"AUTHENTICATE:{uri}"), f["response"].lower()):
            raise SaslError(f"wrong password for {user}")
        return f"rspauth={kd(':' + uri)}".encode(), f.get("authzid") or user
