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
    kind = raw.get("ssl.keyStore.type", "PEM").upper()
    if kind not in ("PEM", ""):
        raise TlsConfigError(f"ssl.keyStore.type={kind}: zkops reads PEM files; export the key store with "
                             "`keytool -importkeystore ... -deststoretype PKCS12` and `openssl pkcs12 -nodes`")
    protocols = (raw.get("ssl.enabledProtocols") or raw.get("ssl.protocol") or "TLSv1.2").replace(" ", "")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3 if "TLSv1.2" not in protocols and "TLSv1.3" in protocols \
        else ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(keystore, raw.get("ssl.keyStore.keyLocation") or None,
                            password=raw.get("ssl.keyStore.password") or None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"ssl.keyStore.location={keystore}: cannot load the certificate and key ({exc})")
    trust = raw.get("ssl.trustStore.location")
    auth = raw.get("ssl.clientAuth", "need").lower()
    if auth not in ("need", "want", "none"):
        raise TlsConfigError(f"ssl.clientAuth={auth}: use need, want or none")
    if trust:
        try:
            ctx.load_verify_locations(trust)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"ssl.trustStore.location={trust}: cannot load the CA certificates ({exc})")
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
        try:
            ctx.load_cert_chain(keystore, raw.get("ssl.quorum.keyStore.keyLocation") or None,
                                password=raw.get("ssl.quorum.keyStore.password") or None)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"ssl.quorum.keyStore.location={keystore}: cannot load the certificate and key "
                                 f"({exc})")
        try:
            ctx.load_verify_locations(trust)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"ssl.quorum.trustStore.location={trust}: cannot load the CA certificates ({exc})")
        if purpose == ssl.PROTOCOL_TLS_CLIENT:
            ctx.check_hostname = verify_host
        ctx.verify_mode = ssl.CERT_REQUIRED
        contexts.append(ctx)
    return contexts[0], contexts[1]
