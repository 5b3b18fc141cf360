"""Remote paths as the transport contract sees them.

A remote path is relative to the target's folder, uses ``/`` as separator,
is Unicode in NFC (so a name typed on macOS, which stores NFD, compares equal
to the same name typed on Linux), and never climbs out of the folder. The core
normalises every path before a plugin sees it, so plugins can trust them.

Uploads in progress live under a *partial name* in the same folder as their
final name (a hidden ``.NAME.offsite-partial``), so the final rename never
crosses a file system and a listing can tell them from finished files.
"""

from __future__ import annotations

import posixpath
import unicodedata

PARTIAL_SUFFIX = ".offsite-partial"


def normalise(path: str) -> str:
    """Return ``path`` in the contract's form.

    ``"/a//b/./c"`` becomes ``"a/b/c"``; ``""`` and ``"/"`` are the target
    folder itself (``""``).

    :raises ValueError: for ``..``, a NUL character, or a backslash (which
        SMB and Windows servers would take as a separator).
    """
    if "\x00" in path:
        raise ValueError(f"remote path {path!r} contains a NUL character")
    if "\\" in path:
        raise ValueError(f"remote path {path!r} contains a backslash; use '/' as the separator")
    parts = [p for p in unicodedata.normalize("NFC", path).split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"remote path {path!r} climbs out of the target folder with '..'")
    return "/".join(parts)


def join(*parts: str) -> str:
    """Join remote path parts and normalise the result."""
    return normalise("/".join(parts))


def partial_path(path: str) -> str:
    """The name an upload of ``path`` is written under until it is complete."""
    folder, name = posixpath.split(normalise(path))
    return posixpath.join(folder, f".{name}{PARTIAL_SUFFIX}")


def is_partial(path: str) -> bool:
    """Whether ``path`` is an upload in progress (see :func:`partial_path`)."""
    name = posixpath.basename(path)
    return name.startswith(".") and name.endswith(PARTIAL_SUFFIX)
