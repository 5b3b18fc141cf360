"""offsite-sftp with awkward names end to end: an image label and folders
with accents, CJK, spaces, '#' and '%', replicated and restored (issue 22)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from offsite.testing.endtoend import AWKWARD, CliSite, replicate_consolidate_restore, url_path


def test_awkward_label_and_folders(sshd: Any, sftp_folder: str, tmp_path: Path) -> None:
    folder = AWKWARD.under(sftp_folder)
    site = CliSite(tmp_path, sshd.url(url_path(folder)), AWKWARD,
                   options={"known_hosts": str(sshd.known_hosts)}, secrets=[sshd.password])
    replicate_consolidate_restore(site, site.dest, tmp_path,
                                  lambda: os.listdir(Path(sshd.root, folder)),
                                  credentials={"password": sshd.password}, label=AWKWARD.label)
