"""The destination folder as the planner sees it.

:func:`scan_destination` reads what the backup software wrote: complete
images (their headers and footers checked), images still being written,
files that claim to be images but are damaged, and other files. Hidden files
(offsite's hash maps, temporary files) and sub-folders are not looked at.
"""

from __future__ import annotations

import time
from pathlib import Path

from offsite.config import DEFAULT_SETTLE
from offsite.errors import UsageError
from offsite.image.chain import scan
from offsite.plan import LocalFile


def scan_destination(folder: Path, settle: float = DEFAULT_SETTLE,
                     now: float | None = None) -> list[LocalFile]:
    """What the destination folder holds, as the planner sees it.

    An image without a valid footer is being written and waits, unless it
    has not changed for ``settle`` seconds: then it was cut short or its
    footer is damaged, and it is reported as bad data rather than waited
    for forever.

    :raises UsageError: the folder does not exist or is not a folder.
    """
    if not folder.is_dir():
        raise UsageError(f"destination folder {folder} does not exist or is not a folder")
    found = scan(folder)
    now = time.time() if now is None else now
    files = [LocalFile(i.path.name, i.size, i.mtime, i.meta) for i in found.images]
    for path in found.incomplete:
        st = path.stat()
        idle = now - st.st_mtime
        if idle < settle:
            files.append(LocalFile(path.name, st.st_size, st.st_mtime, status="incomplete"))
        else:
            files.append(LocalFile(
                path.name, st.st_size, st.st_mtime, status="bad",
                problem=f"{path}: no valid footer, and unchanged for {_minutes(idle)} "
                        f"(settle = {_minutes(settle)}): cut short or damaged, not still "
                        "being written. Fix: check the backup software's log for this "
                        "image; take a new full backup if it failed"))
    for path, error in found.bad:
        st = path.lstat()  # it may be unreadable, even a dangling or looping link
        files.append(LocalFile(path.name, st.st_size, st.st_mtime, status="bad",
                               problem=str(error)))
    for path in found.other:
        st = path.stat()
        files.append(LocalFile(path.name, st.st_size, st.st_mtime))
    return sorted(files, key=lambda f: f.name)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"
