"""offsite-s3 with awkward names end to end: an image label and a key prefix
with accents, CJK, spaces, '#' and '%', replicated and restored (issue 22)."""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from offsite.testing.endtoend import AWKWARD, CliSite, replicate_consolidate_restore, url_path


def test_awkward_label_and_folders(moto_s3: Any, s3_bucket: str, tmp_path: Path) -> None:
    prefix = AWKWARD.under("offsite")
    site = CliSite(tmp_path, f"s3://{s3_bucket}/{url_path(prefix)}", AWKWARD,
                   options={"endpoint_url": moto_s3.endpoint_url, "region": moto_s3.region},
                   secrets=[moto_s3.secret_access_key])

    def at_target() -> list[str]:  # "../key" for a key outside the target's folder
        listed = moto_s3.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
        return [posixpath.relpath(o["Key"], prefix) for o in listed]

    replicate_consolidate_restore(site, site.dest, tmp_path, at_target, label=AWKWARD.label,
                                  credentials={"access_key_id": moto_s3.access_key_id,
                                               "secret_access_key": moto_s3.secret_access_key})
