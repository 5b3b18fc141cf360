"""A real Samba smbd on loopback for tests and benchmarks; needs root and Debian's samba.

:func:`run_smbd` is a context manager: it makes the Unix test user
(:mod:`offsite.testing.unixuser`), a throw-away smb.conf whose every state
path lies in a temporary folder, adds the user to that folder's own passdb,
starts ``/usr/sbin/smbd`` on a free 127.0.0.1 port, yields an
:class:`SmbdInfo`, and at exit stops smbd, removes its files and deletes (or
locks) the user::

    with run_smbd() as smbd:
        endpoint = Endpoint.from_url(smbd.url("folder"),
                                     credentials={"password": smbd.password})

Shares: ``backup`` (read-write, the user's; holds a root-owned folder
``readonly`` the user may not write into and a file ``a-file``),
``readonly`` (a share exported read-only) and ``sealed`` (a share whose
server requires SMB3 encryption). Signing is mandatory for every session.

Why root is needed: smbd maps the SMB user to a Unix user and switches to
it, so the account must exist and smbd must run as root; smbpasswd writes
the user's NT hash into our passdb. Without root, or without
``/usr/sbin/smbd``, :func:`run_smbd` raises :class:`RuntimeError`.

Nothing here is used by the plugin itself; it ships beside it so that the
tests and ``bench/cifs.py`` share one server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import attrs

from offsite.testing.processes import free_port, log_tail, run_checked, stop, wait_until_answering
from offsite.testing.unixuser import unix_user

HOST = "127.0.0.1"
SMBD = "/usr/sbin/smbd"
READY_TIMEOUT_S = 15.0
START_ATTEMPTS = 3
SHARE, READONLY_SHARE, SEALED_SHARE = "backup", "readonly", "sealed"

SMB_CONF_TEMPLATE = """\
# Throw-away smbd for offsite's SMB tests and benchmarks; every state path is in {dir}.
[global]
    server role = standalone server
    workgroup = WORKGROUP
    netbios name = OFFSITETEST
    security = user
    map to guest = never
    passdb backend = tdbsam:{dir}/private/passdb.tdb
    smb ports = {port}
    interfaces = 127.0.0.1
    bind interfaces only = yes
    disable netbios = yes
    server min protocol = SMB3_00
    server signing = {signing}
    # No DFS: a missing share then fails with STATUS_BAD_NETWORK_NAME instead
    # of a DFS referral's STATUS_NOT_FOUND.
    host msdfs = no
    # Do not look into /var/lib/samba/usershares for unknown shares.
    usershare path =
    # Do not spawn samba-dcerpcd: it daemonizes, outlives smbd by a minute and
    # logs to /var/log/samba. Share enumeration (srvsvc) then fails, which
    # nothing here needs.
    rpc start on demand helpers = no
    private dir = {dir}/private
    lock directory = {dir}/lock
    state directory = {dir}/state
    cache directory = {dir}/cache
    pid directory = {dir}/pid
    ncalrpc dir = {dir}/ncalrpc
    log file = {dir}/log/log.%m
    max log size = 0
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes

[{share}]
    path = {share_dir}
    read only = no
    valid users = {user}

[{readonly}]
    path = {share_dir}
    read only = yes
    valid users = {user}

[{sealed}]
    path = {share_dir}
    read only = no
    valid users = {user}
    smb encrypt = required
"""


@attrs.frozen
class SmbdInfo:
    """Everything a client needs to talk to the server :func:`run_smbd` started."""

    host: str
    port: int
    user: str
    password: str = attrs.field(repr=False)
    share: str
    root: Path  # the folder every share exports, owned by the user
    config: Path
    log: Path
    pid: int  # smbd's parent; also its process group (a session of its own)

    def url(self, path: str, *, share: str = SHARE) -> str:
        """Target URL of ``path`` (relative to the share's folder), nothing quoted."""
        return f"smb://{self.user}@{self.host}:{self.port}/{share}/{path}".rstrip("/")

    def kill(self) -> None:
        """SIGKILL smbd and every child it forked (one per client): the server dies."""
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)

    def rclone_env(self) -> dict[str, str] | None:
        """Variables for ``rclone ... :smb:SHARE/PATH`` against this server, or None
        without rclone. Merge them into os.environ for the subprocess."""
        rclone = shutil.which("rclone")
        if rclone is None:
            return None
        # rclone wants its own reversible "obscured" form, not the plain password.
        obscured = run_checked([rclone, "obscure", self.password]).stdout.strip()
        return {
            "RCLONE_CONFIG": "/dev/null",
            "RCLONE_SMB_HOST": self.host,
            "RCLONE_SMB_PORT": str(self.port),
            "RCLONE_SMB_USER": self.user,
            "RCLONE_SMB_PASS": obscured,
        }


def _stop_dcerpcd(d: Path, config: Path) -> None:
    """samba-dcerpcd, if our smbd started it after all, setsid()s and outlives
    smbd by a minute: stop it by the pid file in our own pid directory."""
    try:
        pid = int((d / "pid" / "samba-dcerpcd.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(config).encode() in cmdline:  # not some other process that got the pid
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


@contextmanager
def run_smbd(base: str | os.PathLike[str] | None = None, *,
             signing: str = "mandatory") -> Iterator[SmbdInfo]:
    """A real smbd on a free 127.0.0.1 port while the block runs; see the module doc.

    :param base: the folder to make the server's temporary folder in
        (tempfile's default when None); the test user must be able to
        traverse it and all its parents.
    :param signing: smb.conf's ``server signing``: ``mandatory`` (the tests),
        or ``default`` (signing when the client asks for it: rclone's SMB
        client fails its writes with "signing required" on a server that
        mandates it).
    :raises RuntimeError: not root, ``/usr/sbin/smbd`` missing, or smbd did
        not start (with the tail of its log).
    """
    if os.geteuid() != 0:
        raise RuntimeError("run_smbd needs root: it creates a Unix user and smbd switches to it")
    if not os.access(SMBD, os.X_OK):
        raise RuntimeError(f"{SMBD} not found: apt-get install samba")
    smbpasswd = shutil.which("smbpasswd") or "/usr/bin/smbpasswd"
    with unix_user() as account:
        # Not pytest's tmp_path_factory: /tmp/pytest-of-root is 0700, and the
        # unprivileged user must traverse every parent of the share.
        d = Path(tempfile.mkdtemp(prefix="offsite-smb-", dir=base))
        proc: subprocess.Popen[bytes] | None = None
        config, log = d / "smb.conf", d / "smbd.log"
        try:  # around setup AND yield: a failed start leaks neither a process nor files
            d.chmod(0o755)
            for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log"):
                (d / sub).mkdir()
            (d / "private").chmod(0o700)
            root = d / "share"
            root.mkdir()
            os.chown(root, account.uid, account.gid)  # smbd writes as the user
            (root / "readonly").mkdir(mode=0o755)  # root's: the user may not write in it
            (root / "a-file").write_bytes(b"not a folder\n")
            os.chown(root / "a-file", account.uid, account.gid)
            for attempt in range(START_ATTEMPTS):
                port = free_port(HOST)
                config.write_text(SMB_CONF_TEMPLATE.format(
                    dir=d, port=port, signing=signing, share=SHARE, readonly=READONLY_SHARE,
                    sealed=SEALED_SHARE,
                    share_dir=root, user=account.name))
                if attempt == 0:  # into OUR passdb: -c names the config that says where
                    run_checked([smbpasswd, "-c", str(config), "-a", "-s", account.name],
                         input=f"{account.password}\n{account.password}\n")
                with open(log, "ab") as logf:  # a file: nobody would read a pipe
                    proc = subprocess.Popen(  # noqa: S603 - smbd on our own config
                        [SMBD, "--foreground", "--no-process-group", "--debug-stdout",
                         "--debuglevel=1", f"--configfile={config}"],
                        stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                        # REQUIRED: smbd's parent ends with kill(0, SIGTERM); in
                        # our process group that would kill the test run.
                        start_new_session=True)
                if wait_until_answering(proc, port, timeout=READY_TIMEOUT_S, name="smbd"):
                    break
                stop(proc, group=True)  # exited early, most likely the port race: try a new port
                proc = None
            if proc is None:
                raise RuntimeError(f"smbd did not start in {START_ATTEMPTS} attempts:\n"
                                   f"{log_tail(log)}")
            yield SmbdInfo(host=HOST, port=port, user=account.name, password=account.password,
                           share=SHARE, root=root, config=config, log=log, pid=proc.pid)
        finally:
            if proc is not None:
                stop(proc, group=True)
            _stop_dcerpcd(d, config)
            shutil.rmtree(d, ignore_errors=True)


__all__ = ["READONLY_SHARE", "SEALED_SHARE", "SHARE", "SmbdInfo", "run_smbd"]
