"""Certificates and host keys are verified by default on every protocol (issue 22).

One place that shows, per protocol, what an operator gets from the command
line with nothing configured but the URL: the server's identity is checked,
and turning that off takes an explicit option that is logged loudly on
every connect, or there is no such option at all.

What the plugins' own tests already prove is not repeated here:

* ``ftps``: ``plugins/ftp/tests/test_ftp_plugin.py``:
  ``test_untrusted_certificate`` (no ``ca_file``: the system's CAs refuse
  the test CA), ``test_certificate_for_another_host`` (the name is checked),
  ``test_tls_verify_off_is_explicit_and_loud`` (the warning, in-process);
* ``webdavs``: ``plugins/webdav/tests/test_webdav.py``:
  ``test_an_untrusted_certificate_is_refused_at_the_tls_step``,
  ``test_tls_verify_false_works_and_says_so_loudly`` (in-process);
* ``s3`` over HTTPS: ``plugins/s3/tests/test_s3_conformance.py``:
  ``test_https_endpoint_is_verified_against_ca_file``;
* ``sftp``: ``plugins/sftp/tests/test_sftp_conformance.py``:
  ``test_unknown_host_key_is_refused_with_fingerprint``,
  ``test_changed_host_key_is_refused``,
  ``test_missing_known_hosts_file_means_unknown`` (each with a
  ``known_hosts`` option naming the file);
* ``smb``: SMB has neither TLS nor host keys; what stands for them is
  signing, which the client requires of every session
  (``plugins/cifs/tests/test_cifs_cases.py::test_check_reports_every_step``
  shows ``signed (AES-GMAC)``; encryption: ``test_encrypt_option_encrypts``);
  there is no option that turns signing off.

Added here: SFTP with no ``known_hosts`` option at all (the default file,
in an empty HOME), each default once through ``offsite check`` as a real
process, that the opt-outs (``tls_verify = false`` for FTPS and WebDAV)
print a warning on stderr at the default verbosity, and that S3 and SFTP
refuse an option that would turn verification off, with the configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest

from offsite.testing.certs import make_certs
from offsite.testing.unixuser import account_suffix

OFFSITE = str(Path(sys.executable).with_name("offsite"))


@attrs.frozen
class Checked:
    code: int
    stdout: str
    stderr: str


def offsite_check(tmp: Path, url: str, options: dict[str, Any], credentials: str | None, *,
                  known_hosts: str | None = None) -> Checked:
    """``offsite check`` of one target, in a fresh HOME whose ~/.ssh/known_hosts
    holds ``known_hosts`` (no such file when None)."""
    home = tmp / f"home-{uuid.uuid4().hex[:6]}"
    (home / "conf").mkdir(parents=True)
    if known_hosts is not None:
        (home / ".ssh").mkdir()
        (home / ".ssh" / "known_hosts").write_text(known_hosts)
    (home / "dest").mkdir()
    config = home / "conf" / "offsite.toml"
    opts = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    config.write_text(f'[[job]]\nname = "j"\ndestination = "{home / "dest"}"\n'
                      f'[[job.target]]\nname = "t"\nurl = "{url}"\n'
                      f"[job.target.options]\n{opts}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OFFSITE_")}
    env.update(HOME=str(home), XDG_STATE_HOME=str(home / "state"))
    base = [OFFSITE, "--config", str(config)]
    if credentials is not None:
        subprocess.run([*base, "credentials", "set", "j.t", "--stdin"], input=credentials,
                       text=True, env=env, check=True, capture_output=True)
    got = subprocess.run([*base, "check"], text=True, env=env, capture_output=True,
                         check=False)
    return Checked(got.returncode, got.stdout, got.stderr)


def failed_step(checked: Checked) -> str:
    """The name of the step ``check`` reports FAILED."""
    line = next(ln for ln in checked.stdout.splitlines() if "FAILED" in ln)
    return line.split()[1]


def password(value: str) -> str:
    return json.dumps({"password": value})


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """FTPS, WebDAV over HTTPS and S3 over HTTPS with a CA nothing trusts, and sshd."""
    from offsite_ftp.testserver import run_ftpd
    from offsite_webdav.testserver import run_wsgidav

    certs = make_certs(tmp_path_factory.mktemp("vd-certs"))
    home = tmp_path_factory.mktemp("vd-servers")
    (home / "ftps").mkdir()
    with ExitStack() as stack:
        found: dict[str, Any] = {
            "ftps": stack.enter_context(run_ftpd(home / "ftps", tls="required", certs=certs)),
            "webdavs": stack.enter_context(run_wsgidav(home / "davs", certs=certs)),
        }
        try:
            from offsite_s3.testserver import run_moto

            found["s3"] = moto = stack.enter_context(run_moto(certs=certs))
            moto.client().create_bucket(Bucket="vd-bucket")
        except ImportError:
            pass
        if os.geteuid() == 0 and os.access("/usr/sbin/sshd", os.X_OK):
            from offsite_sftp.testserver import run_sshd

            with account_suffix("vd-ssh"):  # not the plugins' fixtures' account
                found["sftp"] = stack.enter_context(run_sshd())
        yield found


def _server(servers: dict[str, Any], name: str) -> Any:
    if name not in servers:
        pytest.skip(f"no {name} server here (needs root, sshd, moto)")
    return servers[name]


def target(servers: dict[str, Any], scheme: str) -> tuple[str, dict[str, Any], str]:
    """(URL, options other than verification, credentials JSON) of a target."""
    s = _server(servers, scheme)
    folder = f"vd-{uuid.uuid4().hex[:8]}"
    if scheme == "s3":
        creds = '{"access_key_id": "k", "secret_access_key": "s"}'
        return f"s3://vd-bucket/{folder}", {"endpoint_url": s.endpoint_url}, creds
    return s.url(folder), {}, password(s.password)


# --------------------------------------------------------------------------- defaults


@pytest.mark.parametrize(("scheme", "step", "says"), [
    ("ftps", "tls", "certificate verify failed"),
    ("webdavs", "tls", "certificate verify failed"),
    ("s3", "tls", "certificate verify failed"),
    ("sftp", "hostkey", "is unknown: SHA256:"),
])
def test_by_default_an_unknown_server_is_refused(servers: dict[str, Any], tmp_path: Path,
                                                 scheme: str, step: str, says: str) -> None:
    """Nothing but the URL configured: the check stops at the identity step,
    before any credential is sent or anything is written."""
    url, options, creds = target(servers, scheme)
    checked = offsite_check(tmp_path, url, options, creds)
    assert checked.code == 4, checked
    assert failed_step(checked) == step, checked.stdout
    assert says in checked.stdout, checked.stdout
    assert "auth" not in [ln.split()[1] for ln in checked.stdout.splitlines()
                          if ln.lstrip().startswith("ok")], "credentials went out"


def test_sftp_default_known_hosts_is_the_users(servers: dict[str, Any], tmp_path: Path) -> None:
    """The default ``known_hosts`` is ~/.ssh/known_hosts: the server's key
    recorded there is trusted, and nothing else is needed."""
    sshd = _server(servers, "sftp")
    url, options, creds = target(servers, "sftp")
    checked = offsite_check(tmp_path, url, options, creds,
                            known_hosts=sshd.known_hosts.read_text())
    assert checked.code == 0, checked


# --------------------------------------------------------------------------- opting out


@pytest.mark.parametrize("scheme", ["ftps", "webdavs"])
def test_tls_verify_false_is_explicit_and_warned_on_stderr(servers: dict[str, Any],
                                                           tmp_path: Path, scheme: str) -> None:
    """The opt-out works, and an operator sees it without -v: a WARNING on
    stderr that names the target and says the certificate is not checked."""
    url, options, creds = target(servers, scheme)
    checked = offsite_check(tmp_path, url, {**options, "tls_verify": False}, creds)
    assert checked.code == 0, checked
    warnings = [ln for ln in checked.stderr.splitlines() if ln.startswith("WARNING")]
    assert any("tls_verify = false" in ln and "j.t" in ln for ln in warnings), checked.stderr


@pytest.mark.parametrize(("scheme", "option"), [
    ("s3", "tls_verify"), ("s3", "verify"), ("sftp", "tls_verify"),
    ("sftp", "strict_host_key_checking"), ("sftp", "host_key_check"),
])
def test_no_switch_turns_verification_off(servers: dict[str, Any], tmp_path: Path,
                                          scheme: str, option: str) -> None:
    """S3 and SFTP have no opt-out: an option that looks like one is refused
    with the configuration (exit 2), before anything connects."""
    url, options, _ = target(servers, scheme)
    checked = offsite_check(tmp_path, url, {**options, option: False}, None)
    assert checked.code == 2, checked
    assert f"takes no option '{option}'" in checked.stderr, checked.stderr
