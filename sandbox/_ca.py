"""A throwaway certificate authority for the HTTPS emulators, made with ``cryptography``.

``cryptography`` is a runtime dependency already (through ``pyjwt[crypto]``), so the sandbox,
which ``remediator demo`` starts, needs nothing that only the test extra installs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA"]

_PEM = serialization.Encoding.PEM


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Remediator sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class CA:
    """A self-signed CA (P-256, one day) that issues server certificates for loopback names."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self._now = now
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name("Remediator sandbox CA"))
            .issuer_name(_name("Remediator sandbox CA"))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate, PEM: what the clients trust (``connection_verify``)."""
        return self._cert.public_bytes(_PEM)

    def server_context(self, *hosts: str) -> ssl.SSLContext:
        """A server-side TLS context with a certificate for ``hosts`` signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(minutes=5))
            .not_valid_after(self._now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # ssl loads a chain only from files: write it to a private temporary file, load, delete.
        with tempfile.TemporaryDirectory(prefix="remediator-sandbox-tls-") as tmp:
            pem = Path(tmp) / "server.pem"
            pem.write_bytes(key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
                            + cert.public_bytes(_PEM) + self.cert_pem)
            context.load_cert_chain(pem)
        return context
