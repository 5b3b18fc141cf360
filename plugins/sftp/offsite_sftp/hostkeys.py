"""Host keys: the server's key is checked against known_hosts, always.

An unknown or changed key is refused with
:class:`~offsite.errors.HostKeyRejected`, which carries the key's SHA256
fingerprint and the known_hosts line that would trust it: ``offsite check
--trust-host-key`` shows the fingerprint, asks, and records that line.
No option skips the check.
"""

from __future__ import annotations

from pathlib import Path

from offsite_sftp._paramiko import paramiko  # first: paramiko without invoke (see there)

# isort: split
from offsite.errors import Fatal, HostKeyRejected

#: The SSH port: known_hosts names a server on any other port ``[host]:port``.
DEFAULT_PORT = 22


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH prints it (``SHA256:…``)."""
    return str(key.fingerprint)


def known_hosts_name(host: str, port: int) -> str:
    """The name a known_hosts line gives the server at ``host``:``port``."""
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


def check_host_key(key: paramiko.PKey, host: str, port: int, known: Path) -> None:
    """Accept ``key`` only if ``known`` lists it for ``host``:``port``.

    :raises HostKeyRejected: the server is not in ``known`` (unknown) or is
        there with another key (changed).
    :raises Fatal: ``known`` exists but cannot be read. (A missing file is an
        empty one: every server is unknown.)
    """
    name = known_hosts_name(host, port)
    entry = f"{name} {key.get_name()} {key.get_base64()}"
    hostkeys = paramiko.HostKeys()
    try:
        hostkeys.load(str(known))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise Fatal(f"cannot read {known}: {exc.strerror}") from None
    found = hostkeys.lookup(name)
    if found is None:
        raise HostKeyRejected(host=name, reason="unknown", fingerprint=fingerprint(key),
                              key_type=key.get_name(), entry=entry, known_hosts=str(known))
    stored = found.get(key.get_name())
    if stored is None or stored.asbytes() != key.asbytes():
        raise HostKeyRejected(
            host=name, reason="CHANGED (not the key in known_hosts: if nobody changed the "
            "server's key, this may be an attack)", fingerprint=fingerprint(key),
            key_type=key.get_name(), entry=entry, known_hosts=str(known))


__all__ = ["DEFAULT_PORT", "check_host_key", "fingerprint", "known_hosts_name"]
