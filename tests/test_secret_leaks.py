"""No secret in anything offsite prints, writes or passes on (issue 22).

One real server per protocol (a local folder, sshd, moto, pyftpdlib plain
and FTPS, wsgidav over HTTP and HTTPS, smbd), started once for the module.
Two config folders point at them, each with one target per protocol (SFTP
twice: a password, and a private key stored as text with its passphrase):

* ``right``: the credentials work, the key file protects the store;
* ``wrong``: every credential is wrong (a wrong password, an unauthorized
  key, a wrong S3 secret), and the store is protected by a passphrase
  (``OFFSITE_PASSPHRASE``); one ``check`` is also run with a wrong one.

Every secret is a distinctive random string, stored the way users store it
(``offsite credentials set --stdin``). Each config folder then gets every
command as a real subprocess, with ``-vv`` (debug logging, the libraries'
too) and again with ``--json`` where the command has it: ``check``,
``plan``, ``run``, ``status``, ``verify`` with and without ``--read-data``,
``restore`` of every target, ``credentials set/list/delete`` and the
``replicator`` with ``--metrics`` until SIGTERM. While each runs, the
command line and environment of it and its children are sampled.

Then every secret (and its URL-encoded, base64, UTF-16 and hex forms,
:mod:`offsite.testing.leaks`) is searched for in: stdout and stderr of
every command, every file under HOME, the XDG folders, TMPDIR and the
config folder (the journal and its WAL, the locks, crash reports, the
store, which holds ciphertext only), the Prometheus textfile, and every
command line. The environment may hold ``OFFSITE_PASSPHRASE`` (that is how
an operator gives it, e.g. systemd's ``EnvironmentFile=``), and nothing
else. Finally each plugin's error translation is fed a library error that
carries the password, as a server's reply or a library's message may, and
what offsite makes of it is searched the same way.

The search proves it can fail: a secret planted in each form, and in a
file, is found (:func:`test_the_search_finds_a_planted_secret`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import attrs
import pytest

from offsite.errors import TargetError
from offsite.session import Transport
from offsite.testing.certs import make_certs
from offsite.testing.images import Volume
from offsite.testing.leaks import ArgvWatch, files_under, find, forms
from offsite.testing.unixuser import account_suffix
from offsite.transport import Endpoint

BS = 16 * 1024
OFFSITE = str(Path(sys.executable).with_name("offsite"))
NETWORK = ("sftppw", "sftpkey", "s3", "ftp", "ftps", "webdav", "webdavs", "smb")
#: Each job holds three targets at most.
JOBS = {"a": ("file", "sftppw", "sftpkey"), "b": ("s3", "ftp", "ftps"),
        "c": ("webdav", "webdavs", "smb")}
#: The image each restore asks for: the first run places the full and 1..2 as one.
RESTORE = "vol-b001-i002.ofi"


def secret(kind: str) -> str:
    """A random value nobody else prints; ``@+/%`` so that encoded forms differ."""
    return f"{kind}{secrets.token_urlsafe(10)}@+/%{secrets.token_urlsafe(8)}"


# --------------------------------------------------------------------------- servers


@attrs.frozen
class Servers:
    """The running servers, by what a target needs of them."""

    sshd: Any
    moto: Any
    moto_auth: Any
    bucket: str
    ftpd: Any
    ftpsd: Any
    dav: Any
    davs: Any
    smbd: Any


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if os.geteuid() != 0 or not (os.access("/usr/sbin/sshd", os.X_OK)
                                 and os.access("/usr/sbin/smbd", os.X_OK)):
        pytest.skip("needs root, sshd and smbd: every protocol's server runs here")
    pytest.importorskip("moto.server")
    from offsite_cifs.testserver import run_smbd
    from offsite_ftp.testserver import run_ftpd
    from offsite_s3.testserver import run_moto
    from offsite_sftp.testserver import run_sshd
    from offsite_webdav.testserver import run_wsgidav

    certs = make_certs(tmp_path_factory.mktemp("leak-certs"))
    home = tmp_path_factory.mktemp("leak-servers")
    for folder in ("ftp", "ftps"):
        (home / folder).mkdir()
    with ExitStack() as stack:
        # Accounts of their own: the plugins' session fixtures (and other runs
        # on this machine) use the default one, whose password a start changes.
        with account_suffix("lk-ssh"):
            sshd = stack.enter_context(run_sshd())
        with account_suffix("lk-smb"):
            smbd = stack.enter_context(run_smbd())
        moto = stack.enter_context(run_moto())
        bucket = f"leaks-{uuid.uuid4().hex[:12]}"
        moto.client().create_bucket(Bucket=bucket)
        yield Servers(
            sshd=sshd, smbd=smbd, moto=moto, bucket=bucket,
            moto_auth=stack.enter_context(run_moto(enforce_auth=True)),
            ftpd=stack.enter_context(run_ftpd(home / "ftp", password=secret("Ftp"))),
            ftpsd=stack.enter_context(run_ftpd(home / "ftps", tls="required", certs=certs,
                                               password=secret("Ftps"))),
            dav=stack.enter_context(run_wsgidav(home / "dav", password=secret("Dav"))),
            davs=stack.enter_context(run_wsgidav(home / "davs", certs=certs,
                                                 password=secret("Davs"))))


# --------------------------------------------------------------------------- a config folder


@attrs.frozen
class Ran:
    """One command as it ran: its name, exit code and output."""

    name: str
    code: int
    stdout: bytes = attrs.field(repr=False)
    stderr: bytes = attrs.field(repr=False)


@attrs.define
class Sandbox:
    """A config folder with its own HOME, XDG folders and TMPDIR, and the
    commands run in it."""

    root: Path
    which: str
    env: dict[str, str] = attrs.field(repr=False)
    secrets: list[str] = attrs.field(repr=False)
    #: Values the environment may hold (the store's passphrase).
    env_secrets: list[str] = attrs.field(factory=list, repr=False)
    runs: list[Ran] = attrs.field(factory=list)
    watch: dict[str, bytes] = attrs.field(factory=dict)
    vol: Volume | None = None
    #: What ``credentials set`` stored, by target.
    fields: dict[str, dict[str, str]] = attrs.field(factory=dict, repr=False)

    @property
    def config(self) -> Path:
        return self.root / "conf" / "offsite.toml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics" / "offsite.prom"

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        return [OFFSITE, "--config", str(self.config), "-vv", *args]

    def offsite(self, *args: str, input: str | None = None,
                env: dict[str, str] | None = None) -> Ran:
        """Run ``offsite -vv ARGS`` to its end, its command line watched."""
        proc = subprocess.Popen(self._argv(args), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**self.env, **(env or {})})
        with ArgvWatch(proc.pid) as watch:
            out, err = proc.communicate(input.encode() if input else None, timeout=300)
        return self._record(" ".join(args), proc.returncode, out, err, watch)

    def replicator(self, *args: str) -> Ran:
        """The replicator until its textfile shows a pass done, then SIGTERM."""
        self.metrics.unlink(missing_ok=True)
        proc = subprocess.Popen(self._argv(("replicator", "--metrics", str(self.metrics),
                                            *args)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)
        with proc, ArgvWatch(proc.pid) as watch:
            try:
                started, end = time.time(), time.monotonic() + 30
                while time.monotonic() < end and proc.poll() is None and \
                        not self._passed(started):
                    time.sleep(0.2)
            finally:  # also when the wait fails: no replicator outlives the test
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=60)
        return self._record(" ".join(("replicator", *args)), proc.returncode, out, err, watch)

    def _passed(self, started: float) -> bool:
        """The textfile was rewritten 3 s after the start and no target runs."""
        try:
            text = self.metrics.read_text()
        except FileNotFoundError:
            return False
        stamp = text.split("\noffsite_metrics_timestamp_seconds ", 1)[1].split()[0]
        running = [ln for ln in text.splitlines()
                   if ln.startswith("offsite_target_running{") and ln.endswith(" 1")]
        return float(stamp) >= started + 3 and not running

    def _record(self, name: str, code: int, out: bytes, err: bytes, watch: ArgvWatch) -> Ran:
        assert watch.samples > 0, f"{name}: its command line was never sampled"
        ran = Ran(name, code, out, err)
        self.runs.append(ran)
        self.watch.update({f"{k} ({name})": v for k, v in watch.seen.items()})
        return ran

    def outputs(self) -> dict[str, bytes]:
        texts: dict[str, bytes] = {}
        for i, ran in enumerate(self.runs):
            texts[f"stdout of #{i} {ran.name}"] = ran.stdout
            texts[f"stderr of #{i} {ran.name}"] = ran.stderr
        return texts

    def files(self) -> dict[str, bytes]:
        """Everything written outside the destination, the targets and the
        restored volumes: HOME (with the XDG folders), TMPDIR, the config
        folder (the key file excepted: it is the key) and the metrics."""
        return files_under(self.root / "home", self.root / "tmp", self.root / "conf",
                           self.root / "metrics", skip=[self.root / "conf" / "key"])

    def ran(self, name: str) -> Ran:
        return next(r for r in self.runs if r.name == name)


def _key_text(path: Path) -> tuple[str, list[str]]:
    """A private key file's text, and its body lines (what a search looks for)."""
    text = path.read_text()
    return text, [line for line in text.splitlines() if line and not line.startswith("-----")]


def _credentials(servers: Servers, right: bool) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Each target's stored fields, and the values a search looks for."""
    s = servers
    if right:
        key, passphrase = s.sshd.keys["ecdsa"]
        s3 = {"access_key_id": "AKIA" + secrets.token_hex(8).upper(),
              "secret_access_key": secret("S3")}  # the plain moto takes any key
        fields = {"sftppw": {"password": s.sshd.password},
                  "sftpkey": {"private_key": "", "passphrase": passphrase},
                  "s3": s3,
                  "ftp": {"password": s.ftpd.password}, "ftps": {"password": s.ftpsd.password},
                  "webdav": {"password": s.dav.password}, "webdavs": {"password": s.davs.password},
                  "smb": {"password": s.smbd.password}}
    else:
        key = s.sshd.keys["stranger"][0]  # a sound key the server does not authorize
        fields = {"sftppw": {"password": secret("WrongSsh")}, "sftpkey": {"private_key": ""},
                  # the right key id (moto tells an unknown one apart), a wrong secret
                  "s3": {"access_key_id": s.moto_auth.access_key_id,
                         "secret_access_key": secret("WrongS3")},
                  **{name: {"password": secret(f"Wrong{name}")}
                     for name in ("ftp", "ftps", "webdav", "webdavs", "smb")}}
    text, lines = _key_text(key)
    fields["sftpkey"]["private_key"] = text
    values = [v for f in fields.values() for k, v in f.items() if k != "private_key"]
    return fields, values + lines


def _target(name: str, url: str, **options: str) -> str:
    opts = "".join(f"  {k} = {json.dumps(v)}\n" for k, v in options.items())
    table = f"  [job.target.options]\n{opts}" if opts else ""
    return f'  [[job.target]]\n  name = "{name}"\n  url = "{url}"\n  retries = 1\n{table}'


def _config(servers: Servers, root: Path, which: str, dest: Path) -> str:
    s = servers
    folder = f"{which}-{uuid.uuid4().hex[:8]}"
    moto = s.moto if which == "right" else s.moto_auth
    bucket = s.bucket if which == "right" else s.moto_auth.bucket
    ssh = {"known_hosts": str(s.sshd.known_hosts)}
    urls = {
        "file": _target("file", (root / "targets" / "file").as_uri()),
        "sftppw": _target("sftppw", s.sshd.url(f"{folder}-pw"), **ssh),
        "sftpkey": _target("sftpkey", s.sshd.url(f"{folder}-key"), **ssh),
        "s3": _target("s3", f"s3://{bucket}/{folder}", endpoint_url=moto.endpoint_url,
                      region=moto.region),
        "ftp": _target("ftp", s.ftpd.url(f"{folder}-ftp")),
        "ftps": _target("ftps", s.ftpsd.url(f"{folder}-ftps"), ca_file=s.ftpsd.ca_file),
        "webdav": _target("webdav", s.dav.url(f"{folder}-dav")),
        "webdavs": _target("webdavs", s.davs.url(f"{folder}-davs"), ca_file=str(s.davs.ca_file)),
        "smb": _target("smb", s.smbd.url(f"{folder}-smb")),
    }
    return "".join(f'[[job]]\nname = "{job}"\ndestination = "{dest}"\n'
                   + "".join(urls[t] for t in targets) for job, targets in JOBS.items())


def _sandbox(root: Path, which: str, servers: Servers) -> Sandbox:
    for sub in ("home", "tmp", "conf", "metrics", "dest", "out", "targets"):
        (root / sub).mkdir()
    home = root / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OFFSITE_", "AWS_ACCESS", "AWS_SECRET", "AWS_SESSION",
                                "AWS_PROFILE", "XDG_"))}
    env.update(HOME=str(home), TMPDIR=str(root / "tmp"), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_STATE_HOME=str(home / ".local/state"), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_DATA_HOME=str(home / ".local/share"),
               AWS_CONFIG_FILE=str(home / "aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"))
    fields, values = _credentials(servers, which == "right")
    box = Sandbox(root, which, env, values, fields=fields)
    if which == "wrong":  # a passphrase store: the passphrase is a secret too
        box.env_secrets.append(secret("Phrase"))
        env["OFFSITE_PASSPHRASE"] = box.env_secrets[0]
    box.config.write_text(_config(servers, root, which, root / "dest"))
    vol = Volume(root / "volume.raw", 40 * BS + 1234, seed=7)
    for _ in range(3):  # a full and incrementals 1, 2
        vol.image(root / "dest", block_size=BS, full=not vol.images)
        vol.scribble(3, 2 * BS)
    for job, targets in JOBS.items():
        for target in targets:
            if target != "file":
                got = box.offsite("credentials", "set", f"{job}.{target}", "--stdin",
                                  input=json.dumps(fields[target]))
                assert got.code == 0, got.stderr.decode()
    if which == "right":  # the key file's bytes, as text in any form
        key = (root / "conf" / "key").read_bytes()
        box.secrets += [key.hex(), base64.b64encode(key).decode()]
    box.vol = vol
    return box


def _every_command(box: Sandbox) -> None:
    """Every command of the command line, with ``-vv``, then again with ``--json``."""
    targets = [(job, t) for job, ts in JOBS.items() for t in ts]
    for json_mode in (False, True):
        flag = ("--json",) if json_mode else ()
        if not json_mode:
            box.offsite("check")
        else:  # something new to place in this round too
            assert box.vol is not None
            box.vol.image(box.root / "dest", block_size=BS)
        box.offsite("plan", *flag)
        box.offsite("run", *flag)
        box.offsite("status", *flag)
        for job in JOBS:
            box.offsite("verify", job, *flag)
            box.offsite("verify", job, "--read-data", *flag)
        if not json_mode:
            for job, target in targets:
                box.offsite("restore", job, target, RESTORE, str(box.root / "out" / target))
            box.offsite("credentials", "list")
            box.offsite("credentials", "delete", "c.smb")
            # an unknown field whose name is a secret: refused without echoing it
            box.offsite("credentials", "set", "c.smb", "--stdin",
                        input=json.dumps({box.secrets[0]: "x"}))
            box.offsite("credentials", "set", "c.smb", "--stdin",
                        input=json.dumps(box.fields["smb"]))
        box.replicator(*flag)
    if box.env_secrets:  # a wrong passphrase for the store
        wrong = secret("WrongPhrase")
        box.env_secrets.append(wrong)
        box.offsite("check", env={"OFFSITE_PASSPHRASE": wrong})


@pytest.fixture(scope="module", params=["right", "wrong"])
def sandbox(request: pytest.FixtureRequest, servers: Servers,
            tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    box = _sandbox(tmp_path_factory.mktemp(f"leak-{request.param}"), request.param, servers)
    _every_command(box)
    return box


# --------------------------------------------------------------------------- the tests


def test_the_commands_used_the_secrets(sandbox: Sandbox) -> None:
    """The search means something only if the secrets went where they are used:
    right ones replicated and restored through every protocol, wrong ones
    were sent and refused by every server."""
    check = sandbox.ran("check")
    for ran in sandbox.runs:
        if ran.name.startswith("replicator"):  # ran a pass, stopped by SIGTERM
            assert ran.code == 0, (ran.name, ran.stderr.decode()[-2000:])
    if sandbox.which == "right":
        run = sandbox.ran("run --json")
        assert run.code == 0, [e for e in run.stdout.decode().splitlines()
                               if '"target-failed"' in e or '"retry-scheduled"' in e]
        assert check.code == 0, check.stdout.decode() + check.stderr.decode()
        assert sandbox.ran("run").code == 0, sandbox.ran("run").stderr.decode()
        for job, targets in JOBS.items():
            for target in targets:
                got = sandbox.ran(f"restore {job} {target} {RESTORE} "
                                  f"{sandbox.root / 'out' / target}")
                assert got.code == 0, got.stderr.decode()
    else:
        assert check.code == 4, check.stdout.decode() + check.stderr.decode()
        # the last check ran with a wrong passphrase: the store refused it
        assert sandbox.runs[-1].name == "check" and sandbox.runs[-1].code == 2
        report = check.stdout.decode()
        for target in NETWORK:
            block = report.split(f".{target} ", 1)[1].split("\n\n")[0]
            assert "FAILED auth" in block, (target, block)


def test_no_secret_in_any_output(sandbox: Sandbox) -> None:
    leaks = find(sandbox.outputs(), sandbox.secrets + sandbox.env_secrets)
    assert not leaks, "\n".join(leaks)


def test_no_secret_in_any_file_journal_crash_report_or_metrics(sandbox: Sandbox) -> None:
    files = sandbox.files()
    assert any(p.endswith("journal.sqlite") for p in files)
    assert str(sandbox.metrics) in files, "the replicator wrote its Prometheus textfile"
    leaks = find(files, sandbox.secrets + sandbox.env_secrets)
    assert not leaks, "\n".join(leaks)


def test_no_secret_on_a_command_line_nor_in_the_environment(sandbox: Sandbox) -> None:
    """argv: never. The environment: only what the operator put there, the
    store's passphrase (systemd's ``EnvironmentFile=``, a cron line's variable)."""
    argv = {k: v for k, v in sandbox.watch.items() if k.startswith("cmdline")}
    environ = {k: v for k, v in sandbox.watch.items() if k.startswith("environ")}
    assert argv and environ
    leaks = find(argv, sandbox.secrets + sandbox.env_secrets)
    leaks += find(environ, sandbox.secrets)
    assert not leaks, "\n".join(leaks)


# --------------------------------------------------------------------------- translators


def _library_errors(password: str) -> dict[str, list[BaseException]]:
    """Per scheme, library exceptions whose text carries ``password`` the way a
    server's reply or a library's message might: echoed, in a URL, encoded."""
    import ftplib

    import botocore.exceptions
    import paramiko
    import requests
    from smbprotocol.exceptions import SMBAuthenticationError, SMBException
    from webdav3 import exceptions as dav

    quoted = password.replace("@", "%40").replace("/", "%2F")
    url = f"https://offsite:{quoted}@127.0.0.1:1/folder"
    echoed = f"refused password {password!r} (base64 {base64.b64encode(password.encode())!r})"
    client = botocore.exceptions.ClientError(
        {"Error": {"Code": "SignatureDoesNotMatch", "Message": echoed}}, "ListObjectsV2")
    return {
        "sftp": [paramiko.AuthenticationException(echoed), paramiko.SSHException(echoed),
                 OSError(13, echoed)],
        "s3": [client, botocore.exceptions.EndpointConnectionError(endpoint_url=url),
               botocore.exceptions.SSLError(endpoint_url=url, error=echoed)],
        "ftp": [ftplib.error_perm(f"530 {echoed}"), ftplib.error_temp(f"421 {echoed}"),
                ftplib.error_reply(f"999 {echoed}")],
        "webdav": [requests.exceptions.ConnectionError(f"{url}: {echoed}"),
                   requests.exceptions.SSLError(f"{url}: {echoed}"),
                   dav.NoConnection(url), dav.ResponseErrorCode(url, 401, echoed)],
        "smb": [SMBAuthenticationError(echoed), SMBException(echoed)],
    }


@pytest.mark.parametrize("scheme", ["sftp", "s3", "ftp", "webdav", "smb"])
def test_translated_errors_blank_the_secret(scheme: str) -> None:
    password = secret("Translate")
    field = "secret_access_key" if scheme == "s3" else "password"
    url = {"s3": "s3://b/f", "smb": "smb://u@127.0.0.1/share/f"}.get(
        scheme, f"{scheme}://u@127.0.0.1/f")
    endpoint = Endpoint.from_url(url, name="j.t", credentials={field: password})
    transport = Transport.for_endpoint(endpoint)
    texts: dict[str, str] = {}
    for i, exc in enumerate(_library_errors(password)[scheme]):
        error = transport.translate(exc, endpoint=endpoint, step="auth", path="f")
        assert isinstance(error, TargetError)
        what = f"{type(exc).__name__} #{i}"
        # What is printed, logged, put in --json and in the journal.
        texts[f"{what} str"] = str(error)
        texts[f"{what} repr"] = repr(error)
        texts[f"{what} args"] = repr(error.args)
        texts[f"{what} fields"] = repr(getattr(error, "fields", {}))
    leaks = find(texts, [password])
    assert not leaks, "\n".join(leaks) + "\n" + "\n".join(texts.values())


# --------------------------------------------------------------------------- the search itself


def test_the_search_finds_a_planted_secret(tmp_path: Path) -> None:
    """The test can fail: each form of a secret, alone or inside a longer
    text, in output or a file, is found; other text is not reported."""
    planted = secret("Planted")
    for shape, value in forms(planted).items():
        assert find({"out": b"x " + value + b" y"}, [planted]), shape
    basic = base64.b64encode(f"offsite:{planted}".encode())
    assert find({"header": b"Authorization: Basic " + basic}, [planted])
    (tmp_path / "state" / "crash").mkdir(parents=True)
    (tmp_path / "state" / "crash" / "report.txt").write_text(f"password={planted}\n")
    found = find(files_under(tmp_path), [planted])
    assert found and "report.txt" in found[0]
    assert not find({"out": b"nothing here " + secret("Other").encode()}, [planted])


def test_the_watch_sees_a_command_line(tmp_path: Path) -> None:
    planted = secret("Argv")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)",
                             planted])
    with ArgvWatch(proc.pid) as watch:
        proc.wait()
    assert find(watch.texts("cmdline"), [planted])


# --------------------------------------------------------------------------- tracebacks


def _bug_after_a_refused_password(password: str) -> BaseException:
    """A bug met while handling a translated error: its traceback chains the
    library's own exception, which carries the password and was never scrubbed."""
    import paramiko

    endpoint = Endpoint.from_url("sftp://u@127.0.0.1/f", name="j.t",
                                 credentials={"password": password})
    transport = Transport.for_endpoint(endpoint)
    try:
        try:
            raise paramiko.AuthenticationException(f"server refused {password!r}")
        except paramiko.AuthenticationException as exc:
            raise transport.translate(exc, endpoint=endpoint, step="auth", path=None) from exc
    except TargetError:
        try:
            raise KeyError("a bug")
        except KeyError as bug:
            return bug
    raise AssertionError("unreachable")


def _stored(tmp_path: Path, password: str) -> None:
    """Store and read back credentials, as every command that connects does
    (in a process that has remembered nothing else: earlier tests' values
    would blank their own words from the texts searched here)."""
    from offsite.credentials import CredentialStore
    from offsite.redact import forget

    forget()

    CredentialStore(tmp_path / "conf").set("j.t", {"password": password})
    assert CredentialStore(tmp_path / "conf").get("j.t") == {"password": password}


def test_a_crash_report_blanks_a_chained_library_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from offsite.crash import report

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    password = secret("Crash")
    _stored(tmp_path, password)
    line = report(_bug_after_a_refused_password(password), ["offsite", "run"], verbose=True)
    files = files_under(tmp_path / "state")
    (text,) = files.values()
    assert b"AuthenticationException" in text and "AuthenticationException" in line, \
        "the report holds the whole chain"
    leaks = find({"stderr": line, **files}, [password])
    assert not leaks, "\n".join(leaks)


def test_a_logged_traceback_blanks_a_chained_library_error(tmp_path: Path) -> None:
    """``log.exception`` (the replicator's failed pass) through the command
    line's handlers."""
    import io
    import logging

    from offsite.redact import redact_handlers

    password = secret("Logged")
    _stored(tmp_path, password)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    redact_handlers([handler])
    log = logging.getLogger("offsite.test-leaks")
    log.addHandler(handler)
    try:
        bug = _bug_after_a_refused_password(password)
        log.error("the pass failed", exc_info=bug)
    finally:
        log.removeHandler(handler)
    assert "AuthenticationException" in out.getvalue()
    leaks = find({"log": out.getvalue()}, [password])
    assert not leaks, "\n".join(leaks)


def test_a_short_value_is_blanked_as_a_word_not_inside_words() -> None:
    from offsite.redact import forget, redact_remembered, remember

    forget()
    try:
        remember(["b", "long-enough"])
        text = "Traceback: server refused 'b' for bob; long-enough"
        assert redact_remembered(text) == "Traceback: server refused '***' for bob; ***"
    finally:
        forget()
