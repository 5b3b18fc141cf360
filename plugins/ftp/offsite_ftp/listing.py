"""Folder listings: RFC 3659 ``MLSD``/``MLST`` facts, and the ``LIST``
output of servers without them (Unix ``ls -l`` style and the DOS/IIS style).

``MLSD`` is exact: a type, a size in bytes and a UTC modification time
(``modify=YYYYMMDDHHMMSS[.sss]``). ``LIST`` is text meant for people: the
time has minutes at best (``Nov 25 00:38``, the year left out for the last
six months) or only a day (``Nov 25 2019``), in the server's time zone,
which a client cannot learn; offsite reads it as UTC (pyftpdlib, vsftpd and
ProFTPD send UTC by default). The transport reports a placed file's mtime
from the same listing ``list`` uses, so the two always agree.
"""

from __future__ import annotations

import calendar
import re
import time

import attrs

#: ``type`` facts of entries that are not the folder's children.
_SELF_OR_PARENT = ("cdir", "pdir")
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}

# -rw-r--r--   1 owner group     1234 Nov 25 00:38 name
# drwxr-xr-x   2 0 0 4096 Jan  3  2019 other name
# (some servers leave out the group, or the link count: hence the optional fields)
_UNIX = re.compile(
    r"^(?P<kind>[-dlbcpsD])[-rwxsStTlL+.@]{9}\S*\s+"
    r"(?:\d+\s+)?(?:\S+\s+)?(?:\S+\s+)?"
    r"(?P<size>\d+)\s+"
    r"(?P<month>[A-Za-z]{3})\s+(?P<day>\d{1,2})\s+"
    r"(?:(?P<hour>\d{1,2}):(?P<minute>\d{2})|(?P<year>\d{4}))"
    r" (?P<name>.+)$")
# 11-25-25  12:38AM       <DIR>          folder
# 11-25-2025  00:38            1234 name
_DOS = re.compile(
    r"^(?P<month>\d{2})-(?P<day>\d{2})-(?P<year>\d{2}|\d{4})\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?P<ampm>[AaPp][Mm])?\s+"
    r"(?:(?P<dir><DIR>)|(?P<size>\d+))\s+(?P<name>.+)$")


@attrs.frozen
class Entry:
    """One entry of a folder listing.

    :ivar kind: ``"file"``, ``"dir"``, or ``"other"`` (a link whose target a
        listing does not say, a device …: left out of ``list``).
    :ivar mtime: seconds since the epoch, UTC; 0 when the listing gives none.
    """

    name: str
    kind: str
    size: int = 0
    mtime: float = 0.0


def parse_modify(value: str) -> float:
    """An MLSx ``modify`` fact (``20261125003827`` or ``…27.123``) as epoch seconds."""
    whole, _, fraction = value.partition(".")
    try:
        stamp = calendar.timegm(time.strptime(whole, "%Y%m%d%H%M%S"))
    except ValueError:
        return 0.0
    return stamp + (float(f"0.{fraction}") if fraction.isdigit() else 0.0)


def parse_facts(text: str) -> dict[str, str]:
    """``type=file;size=3;modify=…;`` → ``{"type": "file", …}`` (names lower-cased)."""
    facts = {}
    for fact in text.split(";"):
        name, eq, value = fact.partition("=")
        if eq:
            facts[name.strip().lower()] = value
    return facts


def entry_from_facts(name: str, facts: dict[str, str]) -> Entry | None:
    """An :class:`Entry` from MLSx facts, None for the folder itself and its parent."""
    kind = facts.get("type", "").lower()
    if kind in _SELF_OR_PARENT or name in (".", ".."):
        return None
    if kind != "file" and kind != "dir":
        kind = "other"  # OS.unix=slink:…, devices: what they are is not said
    try:
        size = int(facts.get("size", facts.get("sizd", "0")))
    except ValueError:
        size = 0
    return Entry(name, kind, size, parse_modify(facts.get("modify", "")))


def parse_mlsd_line(line: str) -> Entry | None:
    """One line of an ``MLSD`` answer: ``facts; name`` (one space, then the
    name, which may itself hold spaces and semicolons)."""
    facts, sep, name = line.partition(" ")
    if not sep or not name:
        return None
    return entry_from_facts(name, parse_facts(facts))


def mlst_facts(reply: str) -> tuple[str, dict[str, str]]:
    """The path and facts of an ``MLST`` answer (``250-…`` / `` facts path`` /
    ``250 End``); ``("", {})`` when it has no fact line."""
    for line in reply.splitlines()[1:]:
        if line.startswith(" "):
            facts, _sep, path = line[1:].partition(" ")
            return path, parse_facts(facts)
    return "", {}


def parse_mlst_reply(reply: str) -> Entry | None:
    """An ``MLST`` answer as an :class:`Entry` (None when it has no facts)."""
    path, facts = mlst_facts(reply)
    if not facts:
        return None
    kind = facts.get("type", "").lower()
    if kind in _SELF_OR_PARENT:  # some servers call the folder asked about "cdir"
        facts = {**facts, "type": "dir"}
    return entry_from_facts(path.rstrip("/").rsplit("/", 1)[-1] or "/", facts)


def _year_for(month: int, day: int, now: float) -> int:
    """The year of a LIST date without one: the last such date not in the future
    (``ls`` leaves the year out for the past six months; a day of slack for
    clocks and time zones)."""
    today = time.gmtime(now + 86400)
    year = today.tm_year
    if (month, day) > (today.tm_mon, today.tm_mday):
        year -= 1
    return year


def parse_list_line(line: str, now: float | None = None) -> Entry | None:
    """One line of a ``LIST`` answer (Unix or DOS style); None when it is not an entry."""
    now = time.time() if now is None else now
    m = _UNIX.match(line)
    if m:
        name = m["name"]
        kind = {"-": "file", "d": "dir", "D": "dir"}.get(m["kind"], "other")
        if m["kind"] == "l":
            name = name.split(" -> ", 1)[0]
        if name in (".", ".."):
            return None
        month, day = _MONTHS.get(m["month"].lower(), 0), int(m["day"])
        if not month:
            return None
        if m["year"]:
            year, hour, minute = int(m["year"]), 0, 0
        else:
            year, hour, minute = _year_for(month, day, now), int(m["hour"]), int(m["minute"])
        mtime = float(calendar.timegm((year, month, day, hour, minute, 0, 0, 0, 0)))
        return Entry(name, kind, int(m["size"]), mtime)
    m = _DOS.match(line)
    if m:
        year = int(m["year"])
        year += 2000 if year < 70 else 1900 if year < 100 else 0
        hour = int(m["hour"])
        if m["ampm"]:
            hour = hour % 12 + (12 if m["ampm"].lower() == "pm" else 0)
        mtime = float(calendar.timegm((year, int(m["month"]), int(m["day"]), hour,
                                       int(m["minute"]), 0, 0, 0, 0)))
        if m["dir"]:
            return Entry(m["name"], "dir", 0, mtime)
        return Entry(m["name"], "file", int(m["size"]), mtime)
    return None


__all__ = ["Entry", "mlst_facts", "parse_facts", "parse_list_line", "parse_mlsd_line",
           "parse_mlst_reply", "parse_modify"]
