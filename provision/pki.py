"""A small CA on the control machine for ``tls: true`` inventories.

The CA and every certificate live in one directory per inventory (``$ZKOPS_PKI_DIR``, else
``~/.local/state/zkops/pki/<inventory name>``), private keys mode 0600. They are made once
and reused, so a second deploy changes nothing; a node certificate is issued again only
when the host's address changed. Besides the node certificates (server and client use,
for ``secureClientPort`` and ``sslQuorum``), an ``admin`` client certificate lets the
operator connect over TLS: ``KazooClient(..., use_ssl=True, ca=ca.pem, certfile=admin.crt,
keyfile=admin.key)``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography import x509

YEARS = 5


def default_dir(inventory_source: str) -> Path:
    env = os.environ.get("ZKOPS_PKI_DIR")
    if env:
        return Path(env)
    stem = Path(inventory_source).stem if inventory_source and not inventory_source.startswith("<") else "default"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "zkops" / "pki" / stem


class Pki:
    """The CA of one inventory; ``node(name, address)`` returns the PEM (certificate + key) for a host."""

    key: Any  # a private key of the kinds cryptography loads and signs with
    cert: x509.Certificate

    def __init__(self, where: Path, org: str = "zkops") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        self.dir = where
        self.org = org
        where.mkdir(parents=True, exist_ok=True)
        os.chmod(where, 0o700)
        key_path, cert_path = where / "ca.key", where / "ca.pem"
        if key_path.exists() and cert_path.exists():
            self.key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            self.cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        else:
            self.key, self.cert = self._make_ca()
            self._write(key_path, self._key_pem(self.key), 0o600)
            self._write(cert_path, self.cert.public_bytes(serialization.Encoding.PEM), 0o644)
        self.ca_pem = cert_path.read_text()

    @staticmethod
    def _write(path: Path, data: bytes, mode: int) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    @staticmethod
    def _key_pem(key: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        pem: bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
        return pem

    def _name(self, cn: str) -> x509.Name:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.org),
                          x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def _make_ca(self) -> tuple[Any, x509.Certificate]:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        name = self._name(f"zkops CA {now:%Y-%m-%d}")
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=365 * YEARS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                .sign(key, hashes.SHA256()))
        return key, cert

    def _issue(self, cn: str, sans: list[str]) -> bytes:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names: list[x509.GeneralName] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = (x509.CertificateBuilder().subject_name(self._name(cn)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=365 * YEARS))
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                         ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM) + self._key_pem(key)

    def node(self, name: str, address: str) -> str:
        """Certificate + key for a host, valid for its name and address (made once, kept)."""
        from cryptography import x509

        path = self.dir / f"{name}.pem"
        if path.exists():
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            try:
                sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                have = {str(v) for v in sans.get_values_for_type(x509.IPAddress)} | \
                    set(sans.get_values_for_type(x509.DNSName))
            except x509.ExtensionNotFound:
                have = set()
            if address in have and cert.issuer == self.cert.subject:
                return path.read_text()
        self._write(path, self._issue(name, [address, name]), 0o600)
        return path.read_text()

    def client(self, name: str = "admin") -> Path:
        """A client certificate (``<name>.crt`` + ``<name>.key``) for the operator's own tools."""
        crt, key = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        if not (crt.exists() and key.exists()):
            pem = self._issue(name, [])
            cert_part, _, key_part = pem.decode().partition("-----END CERTIFICATE-----\n")
            self._write(crt, (cert_part + "-----END CERTIFICATE-----\n").encode(), 0o644)
            self._write(key, key_part.encode(), 0o600)
        return crt
