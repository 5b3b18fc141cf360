"""offsite-ftp: the FTP and FTPS targets, ``ftp[s]://user@host[:21]/folder``.

``ftps`` is explicit TLS (``AUTH TLS`` on the control connection, ``PROT P``
on every data connection), the certificate verified against the system's
CAs or the ``ca_file`` option, host name included; ``tls_verify = false``
turns that off, with a warning on every connect. Over ``ftp://`` the
password is not sent to a server that offers TLS unless the target says
``allow_plaintext_password = true``. The folder in the URL is relative to
the folder the server starts the user in (``ftp://host//srv/x`` is the
absolute ``/srv/x``), and is created if missing. Credential: ``password``
(none, and no user in the URL: anonymous). Options: ``passive`` (default
true), ``ca_file``, ``timeout`` (seconds, default 30), ``tls_verify``,
``allow_plaintext_password``.

Puts go to a hidden partial file beside the final name, in segments of a
few seconds each (``REST`` + ``STOR``), every one confirmed with ``SIZE``
before the resume token moves on, then ``RNFR``/``RNTO`` into place. An
FTPS data connection always ends with a TLS shutdown: over TLS 1.3 a plain
close loses the server's buffered bytes while it still says "226". Listings
use ``MLSD`` (exact sizes and UTC times), else ``LIST`` parsed for size and
minute-precise time. Paths are UTF-8 (``OPTS UTF8 ON``).

Modules: :mod:`~offsite_ftp.transport` (the hooks), :mod:`~offsite_ftp.datachannel`
(data connections), :mod:`~offsite_ftp.listing` (MLSD and LIST parsing),
:mod:`~offsite_ftp.errors` (ftplib's errors to the core's),
:mod:`~offsite_ftp.testserver` (a real pyftpdlib server for tests and benchmarks).
"""

from __future__ import annotations

from offsite_ftp.transport import FtpConnection, FtpOptions, FtpTransport

#: The object the ``ftp`` and ``ftps`` entry points name.
plugin = FtpTransport()

__all__ = ["FtpConnection", "FtpOptions", "FtpTransport", "plugin"]
