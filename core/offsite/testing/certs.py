"""Throw-away TLS certificates for test servers: a CA and a server certificate.

A plugin's tests start a real TLS server on loopback (moto behind HTTPS, and
later WebDAV and FTPS) with :func:`make_certs`' server certificate, then
prove both sides of verification: a client that trusts only the system's
CAs must refuse the server, and one given :attr:`TestCerts.ca_file` (the
``ca_file`` target option) must accept it::

    certs = make_certs(tmp_path)
    ssl_context.load_cert_chain(certs.cert_file, certs.key_file)

The certificate names ``127.0.0.1`` and ``localhost`` and carries the
extensions a strict verifier asks for (subject and authority key
identifiers, server-auth usage), so a failure in a test is the one the test
meant, not a malformed certificate. Elliptic-curve keys: made in a
millisecond.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@attrs.frozen
class TestCerts:
    """Where :func:`make_certs` wrote the PEM files.

    :ivar ca_file: the CA's certificate: what a client is told to trust.
    :ivar cert_file: the server's certificate, signed by the CA.
    :ivar key_file: the server's private key (unencrypted).
    """

    __test__ = False  # not a pytest test class, despite the name

    ca_file: Path
    cert_file: Path
    key_file: Path = attrs.field(repr=False)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certs(folder: Path, host: str = "127.0.0.1") -> TestCerts:
    """A fresh CA and a server certificate for ``host`` (and localhost), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("offsite test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name,
                                  public_key=ca_key.public_key(),
                                  serial_number=x509.random_serial_number(),
                                  not_valid_before=start, not_valid_after=end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = (x509.CertificateBuilder(subject_name=_name(host), issuer_name=ca_name,
                                    public_key=key.public_key(),
                                    serial_number=x509.random_serial_number(),
                                    not_valid_before=start, not_valid_after=end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))

    certs = TestCerts(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    certs.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certs.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    certs.key_file.chmod(0o600)
    return certs


__all__ = ["TestCerts", "make_certs"]
