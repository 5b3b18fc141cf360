"""A target that cannot be reached, through the command line, for every
network scheme: DNS failure and connection refused.

No server is needed for either, so every installed plugin is driven the way
an operator meets them: `check` exits 4, `plan` and `run` exit 1, each names
the target, the step and the fix, and the destination and the journal stay
as they were. (What each plugin says for the cases that need its server,
such as wrong credentials or an untrusted certificate, is tested in
plugins/*/tests; docs/ERRORS.md lists them all.)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.testing.badinput import UNRESOLVABLE
from offsite.testing.processes import free_port
from offsite.testing.site import Site

#: scheme -> (URL with {host} and {port}, option lines).
TARGETS = {
    "sftp": ("sftp://backup@{host}:{port}/srv/offsite", ""),
    "ftp": ("ftp://backup@{host}:{port}/offsite", ""),
    "ftps": ("ftps://backup@{host}:{port}/offsite", ""),
    "webdav": ("webdav://backup@{host}:{port}/offsite", ""),
    "webdavs": ("webdavs://backup@{host}:{port}/offsite", ""),
    "smb": ("smb://backup@{host}:{port}/share/offsite", ""),
    "s3": ("s3://acme-backups/offsite",
           '[job.target.options]\nendpoint_url = "http://{host}:{port}"\n'),
}
#: case -> (host, the failing step, words of the message).
CASES = {
    "dns": (UNRESOLVABLE, "resolve", f"cannot resolve host '{UNRESOLVABLE}'"),
    "refused": ("127.0.0.1", "connect", "Connection refused"),
}
#: Stored for every target: the failure comes before it is used, and is never shown.
SECRET = "hunter2-secret"
#: command -> its exit code for an unreachable target (docs/USAGE.md §6).
CODES = {"check": 4, "plan": 1, "run": 1}


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("command", list(CODES))
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("scheme", list(TARGETS))
def test_an_unreachable_target(scheme: str, case: str, command: str, site: Site) -> None:
    site.image()
    site.image()
    host, step, words = CASES[case]
    url, options = (t.format(host=host, port=free_port()) for t in TARGETS[scheme])
    # retries = 0: a refused connection is retried with backoff otherwise.
    site.configure(f'[[job.target]]\nname = "vault"\nurl = "{url}"\nretries = 0\n{options}')
    fields = ({"access_key_id": "AKIDEXAMPLE", "secret_access_key": SECRET} if scheme == "s3"
              else {"password": SECRET})
    stored = CliRunner().invoke(cli, ["--config", str(site.config), "credentials", "set",
                                      "nightly.vault", "--stdin"], input=json.dumps(fields))
    assert stored.exit_code == 0, stored.stderr
    before = digest(site.dest)

    result = site.cli(command, code=CODES[command])

    said = result.stdout + result.stderr
    assert f"[nightly.vault] {step} failed: " in said, said
    assert words in said and ". Fix: " in said, said
    assert "Traceback" not in said and SECRET not in said
    assert digest(site.dest) == before
    if command == "run":
        with site.journal() as journal:
            assert journal.placed("nightly", "vault") == []


def test_run_json_names_the_step(site: Site) -> None:
    site.image()
    site.configure(f'[[job.target]]\nname = "vault"\n'
                   f'url = "sftp://backup@{UNRESOLVABLE}/srv/offsite"\n')
    result = site.cli("run", "--json", code=1)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    (failed,) = [e for e in events if e["event"] == "target-failed"]
    assert failed["target"] == "vault" and "resolve failed" in failed["error"]
