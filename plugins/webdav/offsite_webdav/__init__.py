"""offsite-webdav: the WebDAV target, ``webdav://user@host[:80]/folder`` and
``webdavs://user@host[:443]/folder`` (HTTPS).

The folder is percent-encoded in the URL as in a browser (``%20`` for a
space, ``%23`` for ``#``); it is created (MKCOL, parents first) when
missing. Credentials (``offsite credentials set JOB.TARGET``): the
``password`` of the URL's user. Options: ``ca_file`` (the CA that signed
the server's certificate, e.g. a private one's; default: the system's
CAs), ``auth`` (``basic``, the default, or ``digest``), ``timeout``
(seconds, default 30) and ``tls_verify`` (``false`` turns certificate
checks off: insecure, and logged as a warning on every connect).

A put streams the file with a ``Content-Length`` to a hidden partial name
beside the final one, checks with PROPFIND that the server holds every
byte, then MOVEs it over the final name (``Overwrite: T``): a file appears
under its final name only whole. WebDAV has no standard partial PUT, so an
interrupted upload starts again from its first byte; the plugin declares
it (``capabilities``: no resume), and the engine says so when it happens.
``list`` walks the folders with PROPFIND ``Depth: 1`` (many servers refuse
``infinity``) and reports size, last modification and ETag.

Modules: :mod:`~offsite_webdav.transport` (the hooks),
:mod:`~offsite_webdav.errors` (HTTP and library errors into offsite's),
:mod:`~offsite_webdav.propfind` (PROPFIND and percent-encoding) and
:mod:`~offsite_webdav.testserver` (wsgidav for the tests and benchmark).
"""

from __future__ import annotations

from offsite_webdav.transport import DavConnection, WebdavTransport

#: The object the ``webdav`` and ``webdavs`` entry points name.
plugin = WebdavTransport()

__all__ = ["DavConnection", "WebdavTransport", "plugin"]
