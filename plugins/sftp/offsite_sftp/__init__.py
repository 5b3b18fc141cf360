"""offsite-sftp: the SFTP target, ``sftp://user@host[:22]/absolute/folder``.

``sftp://user@host/~/folder`` is relative to the user's home (or the
server's start folder). Credentials (``offsite credentials set JOB.TARGET``):
``password``, or ``private_key`` (a path, or the key's text) with its
``passphrase`` when encrypted; ed25519, ECDSA and RSA keys work. Options:
``known_hosts`` (default ``~/.ssh/known_hosts``), ``private_key`` (a path),
``connect_timeout`` (seconds, default 15), ``ciphers`` (preference list).

Host keys are verified against known_hosts, always: an unknown or changed
key is refused with its SHA256 fingerprint, and ``offsite check
--trust-host-key`` records it after asking. Puts write a hidden partial file
beside the final name with many write requests in flight (as large as the
server's ``limits@openssh.com`` allows), then posix-rename it into place
(plain rename where the server lacks the extension). An interrupted put
resumes at the size the partial file reached on the server. Reads keep a
bounded number of requests of the server's read size in flight (8 MiB).
Both read and write SFTP messages themselves, with one copy of the data,
through paramiko's channel windows and key exchanges.

Modules: :mod:`~offsite_sftp.transport` (the hooks),
:mod:`~offsite_sftp.connection` (opening a session, step by step),
:mod:`~offsite_sftp.hostkeys` (known_hosts checks), :mod:`~offsite_sftp.auth`
(private keys and login), :mod:`~offsite_sftp.folders` (the target folder,
``mkdir -p``), :mod:`~offsite_sftp.reads` and :mod:`~offsite_sftp.writes`
(pipelined reads and writes), :mod:`~offsite_sftp.wire` (request sizes, SFTP
messages built by hand), :mod:`~offsite_sftp.inbuffer` (the channel's
receive buffer), :mod:`~offsite_sftp.errors` (paramiko's errors
to the core's), :mod:`~offsite_sftp.testserver` (a real sshd for tests and
benchmarks); ``_paramiko`` imports paramiko without invoke.
"""

from __future__ import annotations

# Every module here imports offsite_sftp._paramiko before paramiko (see there).
from offsite_sftp.auth import load_private_key
from offsite_sftp.connection import SftpConnection
from offsite_sftp.transport import SftpTransport

#: The object the ``sftp`` entry point names.
plugin = SftpTransport()

__all__ = ["SftpConnection", "SftpTransport", "load_private_key", "plugin"]
