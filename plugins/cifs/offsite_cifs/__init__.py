"""offsite-cifs: the SMB/CIFS target, ``smb://user@host[:445]/share/folder``.

``cifs://`` is the same. SMB 2 and 3 through smbprotocol (pure Python), with
NTLM authentication: the ``password`` credential (``offsite credentials set
JOB.TARGET``), the user in the URL, and the ``domain`` option where the user
is a domain's. Every session is signed; the ``encrypt`` option requires SMB3
encryption of everything (shares that ask for it are encrypted anyway).
``timeout`` bounds every wait for the server (default 30 s).

Puts write a hidden partial file beside the final name, in requests of the
size the server negotiated (1 MiB here) with several of them in flight, then
rename it over the final name (FileRenameInformation with ReplaceIfExists).
An interrupted put resumes at the offset the server confirmed and the
partial file still holds, cutting off anything past it. ``offsite check``
reports: resolve (with the IP address as the way out when a name does not
resolve), connect, negotiate, auth, share, folder, then the security the
session got and the core's write/list/read/delete probe.

Modules: :mod:`~offsite_cifs.transport` (the hooks), :mod:`~offsite_cifs.smb`
(one connection and its file operations), :mod:`~offsite_cifs.pipeline`
(pipelined writes and reads), :mod:`~offsite_cifs.errors` (smbprotocol's
exceptions → offsite's), :mod:`~offsite_cifs.testserver` (a real smbd for
tests and benchmarks).
"""

from __future__ import annotations

from offsite_cifs.transport import SmbTransport

#: The object the ``smb`` and ``cifs`` entry points name.
plugin = SmbTransport()

__all__ = ["SmbTransport", "plugin"]
