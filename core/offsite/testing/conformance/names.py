"""Awkward names: what users call their folders and images, on every protocol.

Each awkward name is put, listed, read and deleted as a file *and* as the
nested folders above it (``NAME/sub NAME/NAME.ofi``), one test per name, so
a failure names the character. A protocol that truly cannot hold a
name (SMB: ``"*:<>?|``, and a trailing space or dot) declares it with the
``unstorable`` fixture, a pattern per rule: the awkward names it matches
skip with the reason, and a put of one must be refused with an error naming
the file, never stored under another name (Samba shows a folder "x " as
``X3F~1``). Names as long as
the protocol allows (``name_limits``) round-trip; one byte longer is refused,
never cut short.

NFD: the core normalises every path to NFC before a plugin sees it
(:mod:`offsite.paths`), so a name typed in NFD (macOS) is stored in NFC on
every protocol, and found again whichever form the caller uses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import attrs
import pytest

from offsite import paths
from offsite.errors import NotFound, TargetError
from offsite.session import Session
from offsite.testing.conformance.contract import read_all
from offsite.transport import BytesSource

AWKWARD = "contract: awkward names (accents, CJK, emoji, spaces, # % + & ? ; quotes) round-trip"
NFD_FORM = "contract: a path given in NFD is stored, listed and found as its NFC form"
UNSTORABLE = ("contract: a name the protocol cannot hold is refused with an error naming "
              "the file, and nothing is stored under another name")
LONG_NAMES = "contract: names up to the protocol's length limit round-trip"
TOO_LONG = ("contract: a name past the protocol's length limit is refused with an error, "
            "never cut short")

#: One name component per test (the test id is the key): each is used as a
#: folder, a sub-folder and a file name.
AWKWARD_NAMES = {
    "windows": "a*b:c<d>e|f",
    "dot-trailing": "trailing dot.",
    "accents": "café naïve résumé",
    "cjk": "日本語のバックアップ 备份",
    "emoji": "disk 💾🎉",
    "space-leading": " leading space",
    "space-trailing": "trailing space ",
    "spaces-inner": "two  spaces",
    "hash": "#1 hash#tag",
    "percent": "100% sure",
    "percent20": "%20literally",
    "percent-hex": "%E2%82%AC not a euro",
    "plus": "a+b",
    "ampersand": "rock&roll=yes",
    "question": "why? really",
    "semicolon": "semi;colon",
    "quote-single": "it's",
    "quote-double": 'say "hi"',
    "backtick-dollar": "`$HOME`",
}

#: The bytes a partial upload's name adds to its file's: ``.NAME.offsite-partial``.
PARTIAL_OVERHEAD = len(paths.partial_path("x")) - 1


@attrs.frozen
class NameLimits:
    """How long names may be, in bytes of UTF-8 (None: no limit of that kind).

    :ivar folder: one folder name.
    :ivar file: one file name, so that the plugin's partial upload name fits
        too (by default 255 less :data:`PARTIAL_OVERHEAD`).
    :ivar path: a whole path below the target folder (S3: 1024 bytes of key
        less the target folder's prefix).
    """

    folder: int | None = 255
    file: int | None = 255 - PARTIAL_OVERHEAD
    path: int | None = None


def name_of_bytes(size: int, suffix: str = "") -> str:
    """A name of exactly ``size`` bytes of UTF-8, mostly three-byte CJK, ending in ``suffix``."""
    room = size - len(suffix.encode())
    return "日" * (room // 3) + "a" * (room % 3) + suffix


def _file_path(name: str) -> str:
    return f"{name}/sub {name}/{name}.ofi"


def _why_not(name: str, unstorable: Mapping[str, str]) -> str | None:
    """Why the protocol cannot hold ``name`` as a folder (the strictest use), or None."""
    return next((why for pattern, why in unstorable.items() if re.search(pattern, name)), None)


class NameTests:
    """Awkward names, NFD input, names the protocol cannot hold, and length limits."""

    @pytest.mark.parametrize("name", list(AWKWARD_NAMES.values()), ids=list(AWKWARD_NAMES))
    def test_awkward_name(self, session: Session, name: str,
                          unstorable: Mapping[str, str]) -> None:
        if why := _why_not(name, unstorable):
            pytest.skip(why)
        path, data = _file_path(name), name.encode() * 3
        placed = session.put(path, BytesSource(data))
        assert (placed.path, placed.size) == (path, len(data)), f"{AWKWARD}: put of {path!r}"
        listed = [f.path for f in session.list()]
        assert listed == [path], f"{AWKWARD}: list shows {listed!r}, not {path!r}"
        assert [f.path for f in session.list(f"{name}/sub {name}")] == [path], \
            f"{AWKWARD}: list of the folder {name!r}/sub {name!r}"
        assert read_all(session, path) == data, f"{AWKWARD}: get of {path!r}"
        assert read_all(session, path, 2) == data[2:], f"{AWKWARD}: get of {path!r} at 2"
        session.delete(path)
        assert session.list() == [], f"{AWKWARD}: delete of {path!r}"

    def test_nfd_folders_and_file(self, session: Session) -> None:
        nfc = "décomposé/Ångström ñ/fichier-é.ofi"
        nfd = unicodedata.normalize("NFD", nfc)
        assert nfd != nfc
        session.put(nfd, BytesSource(b"nfd"))
        assert [f.path for f in session.list()] == [nfc], f"{NFD_FORM}: list"
        assert [f.path for f in session.list(unicodedata.normalize("NFD", "décomposé"))] == \
            [nfc], f"{NFD_FORM}: list of an NFD folder"
        assert read_all(session, nfc) == read_all(session, nfd) == b"nfd", f"{NFD_FORM}: get"
        session.delete(nfd)
        assert session.list() == [], f"{NFD_FORM}: delete"

    def test_unstorable_names_are_refused(self, session: Session,
                                          unstorable: Mapping[str, str]) -> None:
        names = [name for name in AWKWARD_NAMES.values() if _why_not(name, unstorable)]
        if not names:
            pytest.skip("the protocol holds every awkward name")
        for name in names:
            for path in (f"{name}.ofi", f"{name}/x.ofi"):
                if not _why_not(path.split("/")[0], unstorable):
                    continue  # "x." is unstorable, "x..ofi" is not
                with pytest.raises(TargetError) as caught:
                    session.put(path, BytesSource(b"x"))
                assert not isinstance(caught.value, NotFound), f"{UNSTORABLE}: {caught.value}"
                assert path in str(caught.value), \
                    f"{UNSTORABLE}: the error names {path!r}: {caught.value}"
        assert session.list() == [], f"{UNSTORABLE}: something was stored"

    def test_longest_names(self, session: Session, name_limits: NameLimits) -> None:
        folder = name_of_bytes(name_limits.folder or 200)
        file = name_of_bytes(name_limits.file or 200, ".ofi")
        path = f"{folder}/{file}"
        if name_limits.path is not None and len(path.encode()) > name_limits.path:
            path = name_of_bytes(name_limits.path, ".ofi")
        session.put(path, BytesSource(b"long"))
        assert [f.path for f in session.list()] == [path], f"{LONG_NAMES}: list"
        assert read_all(session, path) == b"long", f"{LONG_NAMES}: get"
        session.delete(path)
        assert session.list() == [], f"{LONG_NAMES}: delete"

    def test_names_past_the_limit_are_refused(self, session: Session,
                                              name_limits: NameLimits) -> None:
        too_long = []
        if name_limits.folder is not None:
            too_long.append(f"{name_of_bytes(name_limits.folder + 1)}/x.ofi")
        if name_limits.file is not None:
            too_long.append(name_of_bytes(name_limits.file + 1, ".ofi"))
        if name_limits.path is not None:
            too_long.append(name_of_bytes(name_limits.path + 1, ".ofi"))
        for path in too_long:
            with pytest.raises(TargetError) as caught:
                session.put(path, BytesSource(b"x"))
            assert not isinstance(caught.value, NotFound), f"{TOO_LONG}: {caught.value}"
        assert session.list() == [], f"{TOO_LONG}: something was stored"


__all__ = [
    "AWKWARD",
    "AWKWARD_NAMES",
    "LONG_NAMES",
    "NFD_FORM",
    "PARTIAL_OVERHEAD",
    "TOO_LONG",
    "UNSTORABLE",
    "NameLimits",
    "NameTests",
    "name_of_bytes",
]
