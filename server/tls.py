"""TLS for the secure client port, from ZooKeeper's ``ssl.*`` keys, with PEM files.

Apache ZooKeeper reads Java key stores; zkops reads the same keys but PEM files, which is
what operators hand to every other TLS server:

``ssl.keyStore.location``
    PEM with the server's certificate chain and its private key (or the key in
    ``ssl.keyStore.keyLocation``); ``ssl.keyStore.password`` decrypts an encrypted key.
``ssl.trustStore.location``
    PEM of the CA(s) whose client certificates are accepted.
``ssl.clientAuth``
    ``need`` (Apache's default: a client without a certificate is refused), ``want`` or
    ``none``.
``ssl.protocol`` / ``ssl.enabledProtocols``
    the lowest TLS version is taken from them (TLSv1.2 unless only TLSv1.3 is named).

``sslQuorum=true`` puts the election and quorum links under mutual TLS with the
``ssl.quorum.*`` keys (``ssl.quorum.keyStore.location``, ``ssl.quorum.trustStore.location``,
``ssl.quorum.keyStore.password``, ``ssl.quorum.hostnameVerification``, default true): each
server presents its certificate and accepts only peers whose certificate the trust store
signed.

A client certificate authenticates the session under the ``x509`` scheme with its subject
DN in RFC 2253 form (``CN=alice,O=example``), as X509AuthenticationProvider does; the DN
named by ``zookeeper.X509AuthenticationProvider.superUser`` is a super user.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

# RFC 2253 short names Java's X500Principal#getName() uses; other attributes appear as OIDs
_SHORT = {"commonName": "CN", "localityName": "L", "stateOrProvinceName": "ST", "organizationName": "O",
          "organizationalUnitName": "OU", "countryName": "C", "streetAddress": "STREET",
          "domainComponent": "DC", "userId": "UID"}
_OIDS = {"emailAddress": "1.2.840.113549.1.9.1", "serialNumber": "2.5.4.5", "title": "2.5.4.12",
         "givenName": "2.5.4.42", "surname": "2.5.4.4"}


class TlsConfigError(ValueError):
    """An ``ssl.*`` setting that cannot work; the message names the key."""


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def subject_dn(cert: dict[str, Any]) -> str:
    """The subject of a peer certificate (``SSLSocket.getpeercert()``) in RFC 2253 form."""
    rdns = []
    for rdn in reversed(cert.get("subject", ())):
        parts = []
        for name, value in rdn:
            key = _SHORT.get(name) or _OIDS.get(name, name)
            if key[0].isdigit():
                encoded = str(value).encode("utf-8")
                parts.append(f"{key}=#0c{len(encoded):02x}{encoded.hex()}")
            else:
                parts.append(f"{key}={_escape(str(value))}")
        rdns.append("+".join(parts))
    return ",".join(rdns)


def server_context(raw: dict[str, str]) -> Any:
    """An SSLContext for the secure client port from the ``ssl.*`` keys."""
    import ssl

    keystore = raw.get("ssl.keyStore.location")
    if not keystore:
        raise TlsConfigError("secureClientPort is set but ssl.keyStore.location is not: point it at a PEM "
                             "file holding the server certificate and its private key")
    kind = _store_type(raw, "ssl.keyStore", keystore)
    if kind not in ("PEM", "JKS"):
        raise TlsConfigError(f"ssl.keyStore.type={kind}: zkops reads PEM files and JKS key stores; export the key "
                             "store with `keytool -importkeystore ... -deststoretype JKS` or `openssl pkcs12 -nodes`")
    protocols = (raw.get("ssl.enabledProtocols") or raw.get("ssl.protocol") or "TLSv1.2").replace(" ", "")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if "TLSv1.2" not in protocols and "TLSv1.3" in protocols \
        else ssl.TLSVersion.TLSv1_2
    _load_identity(ctx, raw, "ssl.keyStore", keystore)
    trust = raw.get("ssl.trustStore.location")
    auth = raw.get("ssl.clientAuth", "need").lower()
    if auth not in ("need", "want", "none"):
        raise TlsConfigError(f"ssl.clientAuth={auth}: use need, want or none")
    if trust:
        _load_trust(ctx, raw, "ssl.trustStore", trust)
        ctx.verify_mode = {"need": ssl.CERT_REQUIRED, "want": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}[auth]
    elif auth == "need" and "ssl.clientAuth" in raw:
        raise TlsConfigError("ssl.clientAuth=need needs ssl.trustStore.location (the CA of the client certificates)")
    return ctx


def quorum_contexts(raw: dict[str, str]) -> tuple[Any, Any] | None:
    """(server, client) SSLContexts for the peer links when ``sslQuorum=true``, else None."""
    if raw.get("sslQuorum", "false").strip().lower() != "true":
        return None
    import ssl

    keystore = raw.get("ssl.quorum.keyStore.location")
    trust = raw.get("ssl.quorum.trustStore.location")
    if not keystore or not trust:
        raise TlsConfigError("sslQuorum=true needs ssl.quorum.keyStore.location (this server's certificate and key, "
                             "PEM) and ssl.quorum.trustStore.location (the CA that signed every server's)")
    verify_host = raw.get("ssl.quorum.hostnameVerification", "true").strip().lower() != "false"
    contexts = []
    for purpose in (ssl.PROTOCOL_TLS_SERVER, ssl.PROTOCOL_TLS_CLIENT):
        ctx = ssl.SSLContext(purpose)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_identity(ctx, raw, "ssl.quorum.keyStore", keystore)
        _load_trust(ctx, raw, "ssl.quorum.trustStore", trust)
        if purpose == ssl.PROTOCOL_TLS_CLIENT:
            ctx.check_hostname = verify_host
        ctx.verify_mode = ssl.CERT_REQUIRED
        contexts.append(ctx)
    return contexts[0], contexts[1]


# ---------------------------------------------------------------- Java key stores (JKS)
# The JKS layout and its key protector are Sun's: a list of entries, each private key an
# EncryptedPrivateKeyInfo whose payload is salt(20) | key XOR SHA-1 keystream | check(20).
# Reading them here lets a zoo.cfg written for Apache ZooKeeper (ssl.keyStore.location=x.jks)
# work unchanged; PEM files remain the native format.
JKS_MAGIC = 0xFEEDFEED


def _der(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def _pem(kind: str, der: bytes) -> str:
    import base64

    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----\n"


def _jks_key(encrypted_info: bytes, password: str) -> bytes:
    _, start, _end = _der(encrypted_info, 0)  # EncryptedPrivateKeyInfo SEQUENCE
    _, alg_start, alg_end = _der(encrypted_info, start)  # AlgorithmIdentifier
    _, data_start, data_end = _der(encrypted_info, alg_end)  # OCTET STRING
    blob = encrypted_info[data_start:data_end]
    salt, body, check = blob[:20], blob[20:-20], blob[-20:]
    secret = password.encode("utf-16-be")
    stream = bytearray()
    digest = salt
    while len(stream) < len(body):
        digest = hashlib.sha1(secret + digest).digest()
        stream += digest
    key = (int.from_bytes(body, "big") ^ int.from_bytes(bytes(stream[:len(body)]), "big")).to_bytes(len(body), "big")
    if hashlib.sha1(secret + key).digest() != check:
        raise TlsConfigError("wrong key store password (the key does not decrypt)")
    return key


def read_jks(path: str, password: str) -> tuple[list[tuple[bytes, list[bytes]]], list[bytes]]:
    """([(PKCS#8 key, [DER certificates])], [trusted DER certificates]) from a JKS file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        magic, _version, count = struct.unpack_from(">III", data, 0)
        if magic != JKS_MAGIC:
            raise TlsConfigError(f"{path} is not a JKS key store (PKCS12 and JCEKS are not read: convert to PEM)")
        pos = 12
        keys: list[tuple[bytes, list[bytes]]] = []
        trusted: list[bytes] = []

        def utf() -> str:
            nonlocal pos
            (n,) = struct.unpack_from(">H", data, pos)
            pos += 2 + n
            return data[pos - n:pos].decode("utf-8", errors="replace")

        def blob() -> bytes:
            nonlocal pos
            (n,) = struct.unpack_from(">I", data, pos)
            pos += 4 + n
            return data[pos - n:pos]

        for _ in range(count):
            (tag,) = struct.unpack_from(">I", data, pos)
            pos += 4
            utf()  # alias
            pos += 8  # timestamp
            if tag == 1:
                key = _jks_key(blob(), password)
                (chain,) = struct.unpack_from(">I", data, pos)
                pos += 4
                certs = []
                for _ in range(chain):
                    utf()  # "X.509"
                    certs.append(blob())
                keys.append((key, certs))
            elif tag == 2:
                utf()
                trusted.append(blob())
            else:
                raise TlsConfigError(f"{path}: entry type {tag} is not read (secret keys have no place here)")
    except (struct.error, IndexError):
        raise TlsConfigError(f"{path}: truncated or damaged key store")
    return keys, trusted


def _store_type(raw: dict[str, str], prefix: str, location: str) -> str:
    kind = raw.get(f"{prefix}.type", "").strip().upper()
    if not kind:  # ZooKeeper guesses from the file name too
        kind = "JKS" if location.lower().endswith(".jks") else "PKCS12" if location.lower().endswith(
            (".p12", ".pfx")) else "PEM"
    return kind


def _load_identity(ctx: Any, raw: dict[str, str], prefix: str, location: str) -> None:
    """This server's certificate chain and key, from PEM or from a JKS key store."""
    import ssl

    password = raw.get(f"{prefix}.password") or None
    try:
        if _store_type(raw, prefix, location) == "JKS":
            import os
            import tempfile

            keys, _ = read_jks(location, password or "")
            if not keys:
                raise TlsConfigError(f"{prefix}.location={location}: the key store holds no private key")
            key, chain = keys[0]
            with tempfile.TemporaryDirectory(prefix="zkops-tls-") as tmp:  # ssl loads keys from files only
                pem = os.path.join(tmp, "identity.pem")
                fd = os.open(pem, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write("".join(_pem("CERTIFICATE", c) for c in chain) + _pem("PRIVATE KEY", key))
                ctx.load_cert_chain(pem)
        else:
            ctx.load_cert_chain(location, raw.get(f"{prefix}.keyLocation") or None, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{prefix}.location={location}: cannot load the certificate and key ({exc})")


def _load_trust(ctx: Any, raw: dict[str, str], prefix: str, location: str) -> None:
    import ssl

    try:
        if _store_type(raw, prefix, location) == "JKS":
            keys, trusted = read_jks(location, raw.get(f"{prefix}.password") or "")
            certs = trusted + [c for _, chain in keys for c in chain]
            if not certs:
                raise TlsConfigError(f"{prefix}.location={location}: the trust store holds no certificate")
            ctx.load_verify_locations(cadata="".join(_pem("CERTIFICATE", c) for c in certs))
        else:
            ctx.load_verify_locations(location)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{prefix}.location={location}: cannot load the CA certificates ({exc})")
