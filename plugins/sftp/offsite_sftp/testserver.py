"""A real OpenSSH sshd on loopback for tests and benchmarks; needs root and Debian's openssh-server.

:func:`run_sshd` is a context manager: it makes a Unix test user, client keys
(plain ed25519, encrypted ECDSA, encrypted RSA, and an unauthorized
"stranger" key), known_hosts files (right, wrong, empty) and a few prepared
paths in the SFTP start directory, starts ``/usr/sbin/sshd`` on a free
127.0.0.1 port, yields an :class:`SshdInfo`, and at exit stops sshd, removes
its files and deletes (or locks) the user::

    with run_sshd() as sshd:
        endpoint = Endpoint.from_url(sshd.url("folder"),
                                     options={"known_hosts": str(sshd.known_hosts)},
                                     credentials={"password": sshd.password})
        env = sshd.rclone_env()        # for `rclone ... :sftp:PATH`, or None

Why root is needed: sshd (``UsePAM no``) checks passwords against /etc/shadow,
so a real Unix account has to exist, and sshd refuses to start without its
compiled-in privilege-separation directory /run/sshd. Without root, or
without ``/usr/sbin/sshd``, :func:`run_sshd` raises :class:`RuntimeError`.

Needs Debian's ``openssh-server`` (``/usr/sbin/sshd``, ``ssh-keygen``); for
:meth:`SshdInfo.rclone_env` also ``rclone``. Under pytest-xdist each worker
gets its own user (``offsite-test-gw0``, ...), because the password lives in
the system-wide shadow file; set ``OFFSITE_TEST_USER`` to choose another base
name, e.g. when two independent runs share one machine.

Nothing here is used by the plugin itself; it only ships beside it so that
the tests and ``bench/sftp.py`` share one server.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

from offsite.testing.processes import free_port, log_tail, run_checked, stop, wait_until_answering
from offsite.testing.unixuser import unix_user

HOST = "127.0.0.1"
# Absolute on purpose: started from PATH, sshd exits with
# "sshd re-exec requires execution with an absolute path".
SSHD = "/usr/sbin/sshd"
READY_TIMEOUT_S = 15.0
START_ATTEMPTS = 3

SSHD_CONFIG_TEMPLATE = """\
# Throw-away sshd for offsite's SFTP tests and benchmarks; nothing is read from /etc/ssh.
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
# Passwords are checked against /etc/shadow via crypt(3); no PAM stack involved.
UsePAM no
PermitRootLogin no
AllowUsers {user}
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile {dir}/authorized_keys
# The key file usually lives under /tmp (mode 1777): with StrictModes yes sshd
# logs "Authentication refused: bad ownership or modes for directory /tmp" and
# rejects every key.
StrictModes no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
UseDNS no
LogLevel VERBOSE
# In-process SFTP server: the user's shell is nologin, and an external
# sftp-server started through it would get nologin's text on the channel
# ("Garbage packet received"). -d sets the start directory, so relative paths
# land in root/.
Subsystem sftp internal-sftp -d {root}
"""
# OpenSSH >= 9.8 may throttle repeated failed logins from one address, which
# the negative auth tests produce on purpose; older sshd rejects the keyword,
# so it is only added when `sshd -t` accepts it.
PENALTIES_OFF = "PerSourcePenalties no\n"


@attrs.frozen
class SshdInfo:
    """Everything a client needs to talk to the server :func:`run_sshd` started."""

    host: str
    port: int
    user: str
    password: str = attrs.field(repr=False)
    root: Path  # SFTP start directory ('.' of every session), owned by the user
    known_hosts: Path  # "[127.0.0.1]:PORT ssh-ed25519 AAAA..." with the real host key
    known_hosts_wrong: Path  # the same host entry with a different ed25519 key
    known_hosts_empty: Path  # empty file: the server is unknown
    # name -> (private key file, passphrase or None): "ed25519", "ecdsa", "rsa"
    # are authorized; "stranger" is not.
    keys: dict[str, tuple[Path, str | None]]
    log: Path  # sshd's stderr (-e), LogLevel VERBOSE

    def url(self, path: str) -> str:
        """Target URL of ``path`` (relative to ``root``), e.g. for ``Endpoint.from_url``.

        Nothing is percent-quoted: Endpoint.from_url takes raw Unicode paths.
        """
        return f"sftp://{self.user}@{self.host}:{self.port}{self.root}/{path}"

    def rclone_env(self) -> dict[str, str] | None:
        """Variables for ``rclone ... :sftp:PATH`` against this server, or None without rclone.

        Merge them into os.environ for the subprocess. Password auth with the
        host key pinned. RCLONE_CONFIG=/dev/null gives an in-memory config (no
        "config file not found" notices). shell_type=none and
        disable_hashcheck stop rclone probing echo/md5sum/sha1sum over exec,
        which fails for a nologin user without a home. For fast failures also
        pass ``--retries 1 --low-level-retries 1`` (defaults take ~11 s per
        failure).
        """
        rclone = shutil.which("rclone")
        if rclone is None:
            return None
        # rclone wants its own reversible "obscured" form, not the plain password.
        obscured = run_checked([rclone, "obscure", self.password]).stdout.strip()
        return {
            "RCLONE_CONFIG": "/dev/null",
            "RCLONE_SFTP_HOST": self.host,
            "RCLONE_SFTP_PORT": str(self.port),
            "RCLONE_SFTP_USER": self.user,
            "RCLONE_SFTP_PASS": obscured,
            "RCLONE_SFTP_KNOWN_HOSTS_FILE": str(self.known_hosts),
            "RCLONE_SFTP_SHELL_TYPE": "none",
            "RCLONE_SFTP_DISABLE_HASHCHECK": "true",
        }


# --------------------------------------------------------------------------- helpers


def _ssh_banner(s: socket.socket) -> bool:
    # The probe makes sshd log "kex_exchange_identification: Connection
    # closed by remote host", which is harmless.
    return s.recv(64).startswith(b"SSH-2.0-")


def _keygen(specs: dict[Path, tuple[list[str], str]]) -> None:
    """Run ssh-keygen for every ``file -> (type args, passphrase)`` concurrently.

    The 2048-bit RSA key dominates the set-up time; running the others
    alongside it costs nothing extra.
    """
    keygen = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
    procs = [
        (
            path,
            subprocess.Popen(  # noqa: S603 - ssh-keygen with arguments made here
                [
                    keygen,
                    "-q",
                    *type_args,
                    "-N",
                    passphrase,
                    "-C",
                    f"offsite-test-{path.name}",
                    "-f",
                    str(path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ),
        )
        for path, (type_args, passphrase) in specs.items()
    ]
    errors = []
    for path, proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            errors.append(f"ssh-keygen {path.name} rc={proc.returncode}: {out.decode()}")
    if errors:
        raise RuntimeError("\n".join(errors))


def _public_key(private_key: Path) -> str:
    """'ssh-ed25519 AAAA...' without the comment, as known_hosts wants it."""
    return " ".join(private_key.with_name(private_key.name + ".pub").read_text().split()[:2])


# --------------------------------------------------------------------------- server


@contextmanager
def run_sshd(base: str | os.PathLike[str] | None = None) -> Iterator[SshdInfo]:
    """A real sshd on a free 127.0.0.1 port while the block runs; see the module doc.

    :param base: the folder to make the server's temporary folder in
        (tempfile's default when None); the test user must be able to
        traverse it and all its parents.
    :raises RuntimeError: not root, ``/usr/sbin/sshd`` missing, or sshd did
        not start (with the tail of its log).
    """
    if os.geteuid() != 0:
        raise RuntimeError(
            "run_sshd needs root: it creates a Unix user (sshd checks passwords "
            "against /etc/shadow) and /run/sshd"
        )
    if not os.access(SSHD, os.X_OK):
        raise RuntimeError(f"{SSHD} not found: apt-get install openssh-server")
    with unix_user() as account:
        user, uid, gid, password = account.name, account.uid, account.gid, account.password
        # Not pytest's tmp_path_factory: /tmp/pytest-of-root is 0700, and the
        # unprivileged user must traverse every parent of its start directory.
        d = Path(tempfile.mkdtemp(prefix="offsite-sftp-", dir=base))
        proc: subprocess.Popen[bytes] | None = None
        try:  # around setup AND yield: a failed start leaks neither a process nor files
            d.chmod(0o755)
            root = d / "root"
            root.mkdir()
            os.chown(root, uid, gid)
            # Root-owned 0755: the user may list it but not create anything in it.
            (root / "readonly").mkdir(mode=0o755)
            (root / "a-file").write_bytes(b"not a folder\n")
            os.chown(root / "a-file", uid, gid)

            ecdsa_pass = "ecdsa-" + secrets.token_urlsafe(12)
            rsa_pass = "rsa-" + secrets.token_urlsafe(12)
            # "wrong_host_key" only feeds known_hosts_wrong: a valid key that
            # is not the server's, so the client sees a mismatch, not garbage.
            _keygen(
                {
                    d / "ssh_host_ed25519_key": (["-t", "ed25519"], ""),
                    d / "wrong_host_key": (["-t", "ed25519"], ""),
                    d / "id_ed25519": (["-t", "ed25519"], ""),
                    d / "id_ecdsa": (["-t", "ecdsa", "-b", "256"], ecdsa_pass),
                    # OpenSSH's own format (bcrypt KDF) is ssh-keygen's default.
                    d / "id_rsa": (["-t", "rsa", "-b", "2048"], rsa_pass),
                    d / "id_stranger": (["-t", "ed25519"], ""),
                }
            )
            keys: dict[str, tuple[Path, str | None]] = {
                "ed25519": (d / "id_ed25519", None),
                "ecdsa": (d / "id_ecdsa", ecdsa_pass),
                "rsa": (d / "id_rsa", rsa_pass),
                "stranger": (d / "id_stranger", None),
            }
            (d / "authorized_keys").write_text(
                "".join(_public_key(keys[k][0]) + "\n" for k in ("ed25519", "ecdsa", "rsa"))
            )

            # Compiled-in path; without it sshd (and `sshd -t`) exits 255 with
            # "Missing privilege separation directory: /run/sshd".
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

            config, log = d / "sshd_config", d / "sshd.log"
            extra: str | None = None
            for _attempt in range(START_ATTEMPTS):
                port = free_port(HOST)
                conf = SSHD_CONFIG_TEMPLATE.format(port=port, dir=d, root=root, user=user)
                if extra is None:
                    config.write_text(conf + PENALTIES_OFF)
                    probe = subprocess.run(  # noqa: S603 - sshd -t on our own config
                        [SSHD, "-t", "-f", str(config)], capture_output=True, check=False
                    )
                    extra = PENALTIES_OFF if probe.returncode == 0 else ""
                config.write_text(conf + extra)
                run_checked([SSHD, "-t", "-f", str(config)])  # fails fast, with sshd's message
                # A file, not a PIPE: nobody reads a pipe, so sshd would block on a full one.
                with open(log, "ab") as logf:
                    proc = subprocess.Popen(  # noqa: S603 - sshd on our own config
                        [SSHD, "-D", "-e", "-f", str(config)],
                        stdin=subprocess.DEVNULL,
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                    )
                if wait_until_answering(proc, port, timeout=READY_TIMEOUT_S, name="sshd",
                                        greeting=_ssh_banner):
                    break
                stop(proc)  # exited early, most likely the port race: try a new port
                proc = None
            if proc is None:
                raise RuntimeError(
                    f"sshd did not start in {START_ATTEMPTS} attempts:\n{log_tail(log)}"
                )

            host_key = _public_key(d / "ssh_host_ed25519_key")
            (d / "known_hosts").write_text(f"[{HOST}]:{port} {host_key}\n")
            (d / "known_hosts_wrong").write_text(
                f"[{HOST}]:{port} {_public_key(d / 'wrong_host_key')}\n"
            )
            (d / "known_hosts_empty").write_text("")
            yield SshdInfo(
                host=HOST,
                port=port,
                user=user,
                password=password,
                root=root,
                known_hosts=d / "known_hosts",
                known_hosts_wrong=d / "known_hosts_wrong",
                known_hosts_empty=d / "known_hosts_empty",
                keys=keys,
                log=log,
            )
        finally:
            if proc is not None:
                stop(proc)
            shutil.rmtree(d, ignore_errors=True)


__all__ = ["SshdInfo", "run_sshd"]
