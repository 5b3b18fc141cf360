"""What the conformance suite checks, in words: one constant per contract point.

Every assertion message starts with one of these, so a failure tells a
plugin author which promise of :mod:`offsite.hookspecs` the plugin broke.
Here too: the helpers the tests share, and the default way to change an
interrupted upload's partial file behind the plugin's back.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import unicodedata
from collections.abc import Iterator

import pytest

from offsite import paths
from offsite.errors import TargetError
from offsite.session import Session
from offsite.testing.sources import MiB, random_bytes
from offsite.transport import BytesSource, ResumeToken

ROUNDTRIP = "contract: put then get returns identical bytes"
PUT_RESULT = "contract: put returns the placed file's path and size"
OVERWRITE = "contract: put over an existing file replaces it whole"
GET_OFFSET = "contract: get from an offset returns the bytes from there"
ATOMIC = "contract: put is atomic (nothing under the final name until complete)"
NO_LEFTOVER = "contract: a finished put leaves no partial file behind"
TOKEN = "contract: put saves a resume token before the first byte moves"
RESUME = "contract: a resumed put continues at the offset the target holds"
DISCARD = ("contract: discard cleans up after an abandoned put (its token no longer "
           "resumes), twice is fine, and the finished file under that name stays")
STREAMING = "contract: put and get stream (bounded memory whatever the size)"
PROGRESS = "contract: progress is monotonic and ends at the size"
FOLDERS = "contract: put creates missing nested folders"
LISTING = "contract: list returns path, size and mtime of every file, recursively"
LIST_MISSING = "contract: list of a missing folder is empty"
CHECKSUMS = ("contract: put reports the checksum list shows for the file ('kind:value', "
             "or None for both), so a replaced file is noticed")
STAMPS = ("contract: put reports the mtime list shows for the file (within a second), so a "
          "file changed at the target is noticed and a placed one is not uploaded again")
UNICODE = "contract: Unicode names (NFC) round-trip"
DELETE = "contract: delete removes the file"
DELETE_MISSING = "contract: delete of a missing file raises NotFound"
GET_MISSING = "contract: get of a missing file raises NotFound"
CHECK_OK = "contract: check passes every step on a working target"
CHECK_STEPS = "contract: check reports the step that failed, with a fix"
SECRETS = "contract: no secret in a repr, str, message, traceback or log line"
RESUME_TRUTH = ("contract: a resumed put trusts only what the target really holds: a "
                "partial file shorter, longer or gone, or a token of another file, still "
                "gives the source's bytes, resumed no further than the target holds")
GET_PAST_END = "contract: get at or past the end of a file returns an empty stream"
SKIP = ("contract: a get stream's optional skip(n) drops exactly the next n bytes "
        "(fewer only at the end) and reading goes on right after them")
PLAN = ("contract: a get stream's optional want(ranges) changes no byte read: the planned "
        "ranges, and anything read off the plan, come back as in the file")
LIST_ESCAPES = ("contract: names that need escaping in URLs and shells (% # + & = ' @ $ [ ] "
                "; , ~ ! and spaces) round-trip")
DELETE_FOLDER = "contract: delete of a folder's path raises NotFound and removes nothing"
ERRORS = ("contract: translate_error maps the library's errors to the right class "
          "(permission, missing, full, auth, transient), and only transient ones are "
          "retried")
OPTIONS = ("contract: the options hook declares every [job.target.options] key the plugin "
           "reads, each with one line of help, and an unknown key is refused at load")
SYMLINKS = ("contract: list shows a symlink to a file as that file, leaves out symlinked "
            "folders and dangling links; delete removes the link, never what it points to")
THREADS = ("contract: separate connections work at once from separate threads (one "
           "connection is used by one thread at a time)")

#: A credential value that must never show up anywhere.
CANARY = "canary-S3cr3t-7f3a9e"

#: Names that must survive the trip: accents, CJK, spaces, emoji, RTL, and
#: a name that is NFD on the way in (macOS) and must come back NFC.
UNICODE_NAMES = (
    "café/naïve résumé.ofi",
    "日本語/バックアップ-b001.ofi",
    "with space/a b  c.ofi",
    "emoji 🎉/💾 disk.ofi",
    "עברית/גיבוי.ofi",
    "Ünïcödé-Ω≈ç√.ofi",
)
NFD_NAME = unicodedata.normalize("NFD", "décomposé/fichier-é.ofi")


@contextlib.contextmanager
def holds(point: str) -> Iterator[None]:
    """Inside, a :class:`~offsite.errors.TargetError` is a failure of the
    contract ``point`` (the plugin raised where it must answer), not a crash."""
    try:
        yield
    except TargetError as exc:
        pytest.fail(f"{point}: {type(exc).__name__}: {exc}")


def read_all(session: Session, path: str, offset: int = 0) -> bytes:
    with session.get(path, offset) as stream:
        return stream.read()


def sha256_of(session: Session, path: str) -> str:
    digest = hashlib.sha256()
    with session.get(path) as stream:
        while chunk := stream.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def raw_paths(session: Session, folder: str = "") -> set[str]:
    """What the plugin's own ``list`` returns, partial files included."""
    files = session.transport.pm.hook.list(conn=session.conn, folder=folder)
    return {f.path for f in files}




#: Names with characters that URLs, HTTP paths, S3 keys or shells treat
#: specially, and that every target must still store as they are (none of
#: the characters Windows and SMB forbid: ? * " < > | : \\).
ESCAPE_NAMES = (
    "100%.ofi",
    "%20not-a-space.ofi",
    "a#b.ofi",
    "plus+sign.ofi",
    "amp&er=sand.ofi",
    "semi;colon,comma.ofi",
    "quote'apos.ofi",
    "at@dollar$.ofi",
    "[brackets]{braces}.ofi",
    "tilde~bang!.ofi",
    "-leading-dash.ofi",
    "two  spaces/and a folder.ofi",
)


def tamper_partial_file(session: Session, path: str, token: ResumeToken,
                        how: str) -> str | None:
    """The default ``tamper_partial`` fixture: change the file an interrupted
    put of ``path`` left under :func:`offsite.paths.partial_path`, through the
    plugin's own ``get``, ``put`` and ``delete``.

    :param how: ``"shorten"`` (keep half of it), ``"lengthen"`` (append
        bytes another writer might have) or ``"remove"``.
    :returns: None, or why this plugin keeps no such file (the test skips).
    """
    partial = paths.partial_path(path)
    if partial not in raw_paths(session, posixpath.dirname(partial)):
        return (f"an interrupted put left no file {partial}: override the tamper_partial "
                "fixture to change what your protocol keeps instead")
    if how == "remove":
        session.delete(partial)
        return None
    data = read_all(session, partial)
    if how == "shorten":
        data = data[: len(data) // 2]
    else:
        data += random_bytes(300_000, seed=99)
    session.put(partial, BytesSource(data))  # replaces it whole
    return None
