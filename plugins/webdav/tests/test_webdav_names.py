"""offsite-webdav with awkward names end to end, over HTTPS: an image label
and folders with accents, CJK, spaces, '#' and '%', replicated and restored
(issue 22); a name wsgidav cannot hold refused before any byte moves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from offsite.errors import Fatal
from offsite.session import Transport
from offsite.testing.endtoend import AWKWARD, CliSite, replicate_consolidate_restore
from offsite.testing.sources import random_bytes
from offsite.transport import BytesSource
from offsite_webdav.testserver import DavInfo


def test_awkward_label_and_folders(dav_https: DavInfo, dav_folder: str, tmp_path: Path) -> None:
    folder = AWKWARD.under(dav_folder)
    site = CliSite(tmp_path, dav_https.url(folder), AWKWARD,  # url() quotes it
                   options={"ca_file": str(dav_https.ca_file)}, secrets=[dav_https.password])
    replicate_consolidate_restore(site, site.dest, tmp_path,
                                  lambda: os.listdir(dav_https.root / folder),
                                  credentials={"password": dav_https.password},
                                  label=AWKWARD.label)


def test_a_name_wsgidav_cannot_hold_is_refused_before_anything_is_sent(
        dav_http: DavInfo, dav_folder: str) -> None:
    endpoint = dav_http.endpoint(dav_folder)
    with Transport.for_endpoint(endpoint).connect(endpoint) as session:
        with pytest.raises(Fatal, match=r"'\?'") as caught:
            session.put("sub/why?.ofi", BytesSource(random_bytes(100_000)))
        assert "sub/why?.ofi" in str(caught.value)
    on_disk = [p.name for p in (dav_http.root / dav_folder).rglob("*")]
    assert on_disk == [], f"nothing sent, no folder made: {on_disk}"
