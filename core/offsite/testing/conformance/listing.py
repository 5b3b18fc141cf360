"""Listing tests: list, delete and names, Unicode and awkward ones."""

from __future__ import annotations

import time
import unicodedata

import pytest

from offsite.errors import NotFound
from offsite.session import Session
from offsite.testing.conformance.contract import (
    CHECKSUMS,
    DELETE,
    DELETE_FOLDER,
    DELETE_MISSING,
    ESCAPE_NAMES,
    LIST_ESCAPES,
    LIST_MISSING,
    LISTING,
    NFD_NAME,
    STAMPS,
    SYMLINKS,
    UNICODE,
    UNICODE_NAMES,
    holds,
    read_all,
)
from offsite.testing.conformance.fixtures import Symlink
from offsite.testing.sources import random_bytes
from offsite.transport import BytesSource, RemoteFile


class ListTests:
    """list: every file, recursively, with size and mtime."""

    def test_list_files(self, session: Session) -> None:
        before = time.time()
        wanted = {
            "x.ofi": 10, "w.ofi": 3, "set1/y.ofi": 2000, "set1/y2.ofi": 7,
            "set1/deep/z.ofi": 1, "set1/deep/z2.ofi": 2, "set2/e.ofi": 0,
        }
        for path, size in wanted.items():
            session.put(path, BytesSource(random_bytes(size, seed=size)))
        after = time.time()
        listed = session.list()
        assert {f.path: f.size for f in listed} == wanted, LISTING
        for f in listed:
            assert isinstance(f, RemoteFile), LISTING
            # Servers may round mtimes to seconds or run a little off: allow slack.
            assert before - 300 <= f.mtime <= after + 300, f"{LISTING}: mtime {f.mtime}"

    def test_put_reports_the_checksum_list_shows(self, session: Session,
                                                 large_size: int) -> None:
        placed = {path: session.put(path, BytesSource(random_bytes(size, seed=size)))
                  for path, size in (("a.ofi", 100), ("set/b.ofi", large_size))}
        for f in session.list():
            assert f.checksum == placed[f.path].checksum, CHECKSUMS
            assert abs(f.mtime - placed[f.path].mtime) <= 1.0, \
                f"{STAMPS}: put said {placed[f.path].mtime}, list says {f.mtime}"
            if f.checksum is not None:
                kind, colon, value = f.checksum.partition(":")
                assert kind and colon and value, CHECKSUMS
        again = session.put("a.ofi", BytesSource(random_bytes(100, seed=7)))
        if again.checksum is not None:
            assert again.checksum != placed["a.ofi"].checksum, \
                f"{CHECKSUMS}: other bytes of the same size must get another checksum"

    def test_list_subfolder(self, session: Session) -> None:
        for path in ("a.ofi", "sub/b.ofi", "sub/inner/c.ofi", "subway/d.ofi"):
            session.put(path, BytesSource(b"x"))
        assert [f.path for f in session.list("sub")] == ["sub/b.ofi", "sub/inner/c.ofi"], LISTING

    def test_list_missing_folder_is_empty(self, session: Session) -> None:
        with holds(LIST_MISSING):
            assert session.list("does/not/exist") == [], LIST_MISSING

    def test_list_empty_target(self, session: Session) -> None:
        assert session.list() == [], LISTING


class DeleteTests:
    """delete removes; a missing file is NotFound."""

    def test_delete_removes(self, session: Session) -> None:
        session.put("d/gone.ofi", BytesSource(b"bye"))
        session.put("d/kept.ofi", BytesSource(b"stay"))
        session.delete("d/gone.ofi")
        assert [f.path for f in session.list()] == ["d/kept.ofi"], DELETE
        with pytest.raises(NotFound):
            read_all(session, "d/gone.ofi")

    def test_delete_missing_raises_not_found(self, session: Session) -> None:
        with pytest.raises(NotFound) as caught:
            session.delete("never/was.ofi")
        assert caught.value.path == "never/was.ofi", DELETE_MISSING

    def test_delete_of_a_folder_raises_not_found(self, session: Session) -> None:
        # A mirror deletes files; a folder in a file's place is nothing to
        # delete, and its contents must never go with it.
        session.put("folder/inside.ofi", BytesSource(b"stays"))
        try:
            session.delete("folder")
        except NotFound:
            pass
        else:
            pytest.fail(f"{DELETE_FOLDER}: deleting 'folder' succeeded")
        with holds(DELETE_FOLDER):
            assert read_all(session, "folder/inside.ofi") == b"stays", DELETE_FOLDER


class UnicodeTests:
    """Unicode names round-trip through put, list, get and delete."""

    def test_unicode_names(self, session: Session) -> None:
        for i, name in enumerate(UNICODE_NAMES):
            session.put(name, BytesSource(name.encode() * (i + 1)))
        assert {f.path for f in session.list()} == set(UNICODE_NAMES), UNICODE
        for i, name in enumerate(UNICODE_NAMES):
            assert read_all(session, name) == name.encode() * (i + 1), UNICODE
        for name in UNICODE_NAMES:
            session.delete(name)
        assert session.list() == [], UNICODE

    def test_names_that_need_escaping(self, session: Session) -> None:
        for i, name in enumerate(ESCAPE_NAMES):
            session.put(name, BytesSource(name.encode() * (i + 1)))
        assert {f.path for f in session.list()} == set(ESCAPE_NAMES), LIST_ESCAPES
        for i, name in enumerate(ESCAPE_NAMES):
            assert read_all(session, name, 1) == (name.encode() * (i + 1))[1:], LIST_ESCAPES
        for name in ESCAPE_NAMES:
            session.delete(name)
        assert session.list() == [], LIST_ESCAPES

    def test_nfd_input_comes_back_nfc(self, session: Session) -> None:
        session.put(NFD_NAME, BytesSource(b"nfd"))
        nfc = unicodedata.normalize("NFC", NFD_NAME)
        assert [f.path for f in session.list()] == [nfc], UNICODE
        assert read_all(session, nfc) == b"nfd", UNICODE


class SymlinkTests:
    """Symlinks at the target: listed as what they point to, deleted as links."""

    def test_symlinks_in_list_and_delete(self, session: Session,
                                         symlink: Symlink | str) -> None:
        if isinstance(symlink, str):
            pytest.skip(symlink)
        session.put("real/file.ofi", BytesSource(b"12345"))
        session.put("real/dir/inner.ofi", BytesSource(b"x"))
        symlink("links/to-file.ofi", "real/file.ofi")
        symlink("links/to-dir", "real/dir")
        symlink("links/dangling.ofi", "real/nothing.ofi")
        with holds(SYMLINKS):
            listed = {f.path: f.size for f in session.list("links")}
            assert listed == {"links/to-file.ofi": 5}, f"{SYMLINKS}: {listed}"
            assert read_all(session, "links/to-file.ofi") == b"12345", SYMLINKS
            session.delete("links/to-file.ofi")
            assert read_all(session, "real/file.ofi") == b"12345", SYMLINKS
            assert "links/to-file.ofi" not in {f.path for f in session.list()}, SYMLINKS
