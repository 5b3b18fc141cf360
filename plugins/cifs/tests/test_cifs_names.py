"""offsite-cifs with awkward names end to end: an image label and folders
with accents, CJK, spaces, '#' and '%', replicated and restored; and a
label SMB cannot hold refused by name, nothing placed (issue 22)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from offsite.session import Transport
from offsite.testing.endtoend import AWKWARD, CliSite, replicate_consolidate_restore, url_path
from offsite.testing.images import Volume
from offsite.transport import Endpoint


def test_awkward_label_and_folders(smbd: Any, smb_folder: str, tmp_path: Path) -> None:
    folder = AWKWARD.under(smb_folder)
    site = CliSite(tmp_path, smbd.url(url_path(folder)), AWKWARD, secrets=[smbd.password])
    replicate_consolidate_restore(site, site.dest, tmp_path,
                                  lambda: os.listdir(Path(smbd.root, folder)),
                                  credentials={"password": smbd.password}, label=AWKWARD.label)


def test_a_label_smb_cannot_hold_is_refused_by_name(smbd: Any, smb_folder: str,
                                                   tmp_path: Path) -> None:
    site = CliSite(tmp_path, smbd.url(smb_folder), secrets=[smbd.password])
    site("credentials", "set", "nightly.vault", "--stdin",
         input=json.dumps({"password": smbd.password}))
    Volume(tmp_path / "vol.raw", 100_000).image(site.dest, label="what? now")
    run = site("run", code=1)
    out = run.stdout + run.stderr
    assert "what? now-b001.ofi" in out and "SMB forbids" in out, out
    assert "rename" in out, "it says how to fix it"
    assert not any(Path(smbd.root, smb_folder).rglob("*?*")), "nothing stored, mangled or not"


def test_a_target_folder_smb_would_mangle_is_refused_at_the_folder_step(
        smbd: Any, smb_folder: str) -> None:
    for folder, bad in ((f"{smb_folder}/trailing ", "trailing "), (f"{smb_folder}/a|b/c", "a|b")):
        endpoint = Endpoint.from_url(smbd.url(url_path(folder)), name="smb-test",
                                     credentials={"password": smbd.password})
        report = Transport.for_endpoint(endpoint).check(endpoint)
        assert report.failed is not None and report.failed.name == "folder", report.steps
        assert repr(bad) in str(report.failed.error), "the error names the folder's name"
    assert not Path(smbd.root, smb_folder).exists() or \
        not any(Path(smbd.root, smb_folder).iterdir()), "nothing made, mangled or not"
