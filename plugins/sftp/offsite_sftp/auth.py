"""Logging in: a private key (from the credential store or a file) or a password.

The key is read from its text in memory and never written to disk; ed25519,
ECDSA and RSA keys work, in OpenSSH's format or PEM, encrypted with a
``passphrase`` or not. No message here contains a key, a passphrase, a
password or the path stored as a credential.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from offsite.errors import AuthError
from offsite.transport import Endpoint


def load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    """A paramiko key from its text, without writing it to disk.

    :raises AuthError: encrypted without a passphrase, a wrong passphrase, or
        not a private key (the message never contains the key or passphrase).
    """
    data = text.encode()
    password = passphrase.encode() if passphrase else None
    try:
        try:
            loaded: Any = serialization.load_ssh_private_key(data, password)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password)
    except TypeError:
        raise AuthError("the private key is encrypted and no passphrase is stored",
                        fix="store the key's passphrase: offsite credentials set {name}"
                        ) from None
    except ValueError:
        raise AuthError("the private key could not be decrypted: a wrong passphrase, or not "
                        "a private key", fix="check the key and its passphrase: offsite "
                        "credentials set {name}") from None
    # cryptography tells the key's type; paramiko needs the class for it.
    classes = ((rsa.RSAPrivateKey, paramiko.RSAKey), (ec.EllipticCurvePrivateKey,
               paramiko.ECDSAKey), (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key))
    for kind, cls in classes:
        if isinstance(loaded, kind):
            key: paramiko.PKey = cls(file_obj=io.StringIO(text), password=passphrase)
            return key
    raise AuthError(f"unsupported key type {type(loaded).__name__}",
                    fix="use an ed25519, ECDSA or RSA key")


def authenticate(transport: paramiko.Transport, endpoint: Endpoint) -> None:
    """Log ``endpoint``'s user in on ``transport``: with the private key if
    one is stored (its text, or a path) or named by the ``private_key``
    option, else with the stored password.

    :raises AuthError: nothing to log in with, an unreadable or undecryptable
        key, or a login the server did not complete. (A refusal is paramiko's
        ``AuthenticationException``, which :mod:`offsite_sftp.errors` translates.)
    """
    creds = endpoint.credentials
    key_text = creds.get("private_key") or ""
    key_path = endpoint.options.get("private_key")
    if key_text and "PRIVATE KEY" not in key_text:  # a path stored as the credential
        key_path, key_text = key_text, ""
    if key_path and not key_text:
        try:
            key_text = Path(os.path.expanduser(str(key_path))).read_text()
        except OSError as exc:
            # The path may come from the credential store: do not echo it.
            raise AuthError(f"cannot read the private key file: {exc.strerror}",
                            fix="check the private_key path (option or credential) and "
                            "its permissions") from None
    if key_text:
        pkey = load_private_key(key_text, creds.get("passphrase"))
        transport.auth_publickey(endpoint.username, pkey)
    elif creds.get("password"):
        transport.auth_password(endpoint.username, creds["password"])
    else:
        raise AuthError("no password or private key is stored for this target",
                        fix="offsite credentials set {name}")
    if not transport.is_authenticated():
        raise AuthError("the server did not accept the credentials")


__all__ = ["authenticate", "load_private_key"]
