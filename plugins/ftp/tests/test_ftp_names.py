"""offsite-ftp with awkward names end to end, over FTP and FTPS: an image
label and folders with accents, CJK, spaces, '#' and '%', replicated and
restored (issue 22)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from offsite.testing.endtoend import AWKWARD, CliSite, replicate_consolidate_restore, url_path
from offsite_ftp.testserver import FtpdInfo


@pytest.mark.parametrize("server", ["ftpd", "ftpsd"])
def test_awkward_label_and_folders(request: pytest.FixtureRequest, server: str,
                                   tmp_path: Path) -> None:
    ftpd: FtpdInfo = request.getfixturevalue(server)
    fresh = f"t-{uuid.uuid4().hex}"
    request.addfinalizer(lambda: shutil.rmtree(ftpd.root / fresh, ignore_errors=True))
    folder = AWKWARD.under(fresh)
    site = CliSite(tmp_path, ftpd.url(url_path(folder)), AWKWARD, options=ftpd.options(),
                   secrets=[ftpd.password])
    replicate_consolidate_restore(site, site.dest, tmp_path,
                                  lambda: os.listdir(ftpd.root / folder),
                                  credentials={"password": ftpd.password}, label=AWKWARD.label)
