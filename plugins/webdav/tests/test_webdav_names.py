"""offsite-webdav with awkward names end to end, over HTTPS: an image label
and folders with accents, CJK, spaces, '#' and '%', replicated and restored
(issue 22)."""

from __future__ import annotations

import os
from pathlib import Path

from offsite.testing.endtoend import AWKWARD, CliSite, replicate_consolidate_restore
from offsite_webdav.testserver import DavInfo


def test_awkward_label_and_folders(dav_https: DavInfo, dav_folder: str, tmp_path: Path) -> None:
    folder = AWKWARD.under(dav_folder)
    site = CliSite(tmp_path, dav_https.url(folder), AWKWARD,  # url() quotes it
                   options={"ca_file": str(dav_https.ca_file)}, secrets=[dav_https.password])
    replicate_consolidate_restore(site, site.dest, tmp_path,
                                  lambda: os.listdir(dav_https.root / folder),
                                  credentials={"password": dav_https.password},
                                  label=AWKWARD.label)
