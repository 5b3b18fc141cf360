"""PROPFIND: the request body, the multistatus answer, and paths in URLs.

Paths cross HTTP percent-encoded, UTF-8, both ways: :func:`quote_path`
encodes a Unicode path for a request line (every byte but letters,
digits, ``-._~`` and ``/``, so ``#``, ``%``, ``?``, ``;`` and spaces
reach the server as part of the name), and :func:`href_path` decodes what
a server writes in ``<D:href>`` (an absolute path, or a full URL as some
servers send) back to the Unicode path, NFC.

:func:`parse_multistatus` reads the answer with the standard library's
XML parser, asking for nothing but what ``list`` needs (resourcetype,
size, last modification, ETag). A body that is not a multistatus document
(an HTML page from a proxy, a login portal, a web server without WebDAV)
raises :class:`NotWebDAV` naming what came instead, never a parser
traceback.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
import urllib.parse
import xml.etree.ElementTree as ET

import attrs

DAV = "{DAV:}"

#: Only the properties ``list`` needs: an ``allprop`` makes some servers
#: (wsgidav among them) compute quotas and more for every entry.
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/><D:getlastmodified/><D:getetag/>"
    b"</D:prop></D:propfind>"
)


class NotWebDAV(ValueError):
    """A PROPFIND answer that is not a WebDAV multistatus document."""


@attrs.frozen
class Entry:
    """One resource in a multistatus answer.

    :ivar path: the href's path, percent-decoded, NFC, without a trailing ``/``.
    """

    path: str
    folder: bool
    size: int
    mtime: float
    etag: str | None


def quote_path(path: str) -> str:
    """``/Sicherung Größe/a#b%.ofi`` as it goes in a request line (UTF-8,
    percent-encoded; ``/`` kept as the separator)."""
    return urllib.parse.quote(path, safe="/")


def href_path(href: str) -> str:
    """The Unicode path an ``<D:href>`` names (absolute path or full URL)."""
    path = urllib.parse.urlsplit(href.strip()).path
    decoded = urllib.parse.unquote(path, errors="strict")
    return unicodedata.normalize("NFC", decoded).rstrip("/") or "/"


def _mtime(text: str | None) -> float:
    # getlastmodified is an RFC 1123 date ("Wed, 25 Nov 2026 00:38:41 GMT").
    if not text:
        return 0.0
    try:
        return email.utils.parsedate_to_datetime(text.strip()).timestamp()
    except (TypeError, ValueError):
        return 0.0


def _size(text: str | None) -> int:
    try:
        return int((text or "0").strip())
    except ValueError:
        return 0


def _etag(text: str | None) -> str | None:
    # A weak ETag (W/"…") says "equivalent", not "same bytes": still the
    # server's word that the resource changed when it changes.
    value = (text or "").strip()
    value = value.removeprefix("W/").strip('"')
    return value or None


def describe_body(body: bytes, content_type: str = "") -> str:
    """A short, printable description of a body that is not what was
    expected: an HTML page's title (or its first words), or its start."""
    text = body[:4096].decode("utf-8", "replace")
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    if title is None:
        title = re.search(r"<h1[^>]*>(.*?)</h1>", text, re.I | re.S)
    if title is not None:
        words = re.sub(r"<[^>]+>", " ", title.group(1))
    elif "<" in text[:200]:
        words = re.sub(r"<[^>]+>", " ", re.sub(r"(?is)<(script|style).*?</\1>", " ", text))
    else:
        words = text
    words = " ".join(words.split())[:120]
    kind = "an HTML page" if "html" in content_type.lower() or "<html" in text.lower() else (
        f"a {content_type.split(';')[0]} body" if content_type else "a body")
    return f"{kind} ({words!r})" if words else kind


def parse_multistatus(body: bytes, content_type: str = "") -> list[Entry]:
    """The entries of a 207 Multi-Status answer.

    Propstats other than 200 (a property the server does not have) are
    skipped; a response without a 2xx status is left out.

    :raises NotWebDAV: the body is not a multistatus XML document.
    """
    try:
        root = ET.fromstring(body)  # noqa: S314 - the server's answer; expat expands no external entities
    except ET.ParseError:
        raise NotWebDAV(f"the server answered PROPFIND with {describe_body(body, content_type)}, "
                        "not WebDAV XML") from None
    if root.tag != f"{DAV}multistatus":
        raise NotWebDAV(f"the server answered PROPFIND with a <{root.tag}> document, "
                        "not a WebDAV multistatus")
    entries = []
    for response in root.iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href")
        status = response.findtext(f"{DAV}status")
        if href is None or (status and " 2" not in status[:13]):
            continue
        props: dict[str, ET.Element] = {}
        for propstat in response.iter(f"{DAV}propstat"):
            code = propstat.findtext(f"{DAV}status") or "HTTP/1.1 200 OK"
            if " 200" not in code:
                continue
            prop = propstat.find(f"{DAV}prop")
            for child in prop if prop is not None else ():
                props[child.tag] = child
        kind = props.get(f"{DAV}resourcetype")
        folder = kind is not None and kind.find(f"{DAV}collection") is not None
        length = props.get(f"{DAV}getcontentlength")
        modified = props.get(f"{DAV}getlastmodified")
        etag = props.get(f"{DAV}getetag")
        try:
            path = href_path(href)
        except UnicodeDecodeError:
            continue  # a name that is not UTF-8 cannot be one offsite wrote
        entries.append(Entry(
            path, folder, _size(length.text if length is not None else None),
            _mtime(modified.text if modified is not None else None),
            _etag(etag.text if etag is not None else None)))
    return entries


__all__ = ["PROPFIND_BODY", "Entry", "NotWebDAV", "describe_body", "href_path",
           "parse_multistatus", "quote_path"]
