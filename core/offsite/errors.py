"""The error tree: every failure an operator can see, with how to fix it.

The tree is shallow on purpose (after pyfilesystem2's ``fs.errors``)::

    OffsiteError
     ├── PluginError              a plugin is broken, switched off, or breaks the contract
     │    └── PluginMissing       no installed plugin handles a URL scheme
     ├── UsageError               the request contradicts what is there (exit code 2)
     ├── ConfigError              offsite.toml is wrong: file, key path, expectation (exit 2)
     ├── CredentialError          the credential store cannot be used (exit 2)
     ├── JournalError             the journal cannot be opened or is too new
     ├── Locked                   another offsite process works the job (exit code 75)
     ├── SourceError              reading the local data to upload failed
     ├── ImageError               an image or a chain is bad data (exit code 3)
     │    ├── NotAnImage          wrong magic
     │    ├── UnsupportedVersion  written by a newer, incompatible format
     │    ├── IncompleteImage     no valid footer: still being written, or cut short
     │    ├── CorruptImage        a checksum, index entry or length is wrong
     │    └── BrokenChain         a gap, or an image applying to a foreign state
     └── TargetError              something went wrong at or on the way to a target
          ├── AuthError           the server refused the credentials
          ├── PermissionDenied    authenticated, but not allowed to do this
          ├── NotFound            the remote file or folder does not exist
          ├── Transient           worth retrying (the engine retries these)
          │    └── ConnectFailed  refused, reset or timed out
          └── Fatal               retrying will not help
               ├── StorageFull    no space left at the target, or over quota
               ├── ResolveFailed  the host name does not resolve
               ├── TLSFailed      the server's certificate was not trusted
               └── HostKeyRejected  the SSH host key is unknown or changed

Messages are class-level templates filled from attributes, so the wording an
operator reads lives in one place. Every :class:`TargetError` carries the
remote ``path`` and the ``step`` (``resolve``, ``connect``, ``auth``, ``put`` …)
where it happened, the ``target`` name, and the original library exception in
``exc``; ``str()`` gives one line that says what failed, where, and how to fix
it. Plugins never build these from scattered ``except`` blocks: each one
translates its library's exceptions in a single ``translate_error`` hook (see
:mod:`offsite.hookspecs`), and the core attaches path, step and target.

Secrets: a message is built only from what the plugin puts in ``detail`` and
the fields; :meth:`TargetError.scrub` blanks any credential value that slipped
in, and the core calls it on every error that crosses the contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

from offsite.redact import redact


class _Blank(dict[str, Any]):
    """Formats a missing template field as ``?`` instead of raising KeyError."""

    def __missing__(self, key: str) -> str:
        return "?"


def _unstopped(message: str) -> str:
    """``message`` without its full stop, for ". Fix: …" to follow: a
    library's "Authentication failed." must not become "failed.. Fix"."""
    return message.rstrip(".")


class OffsiteError(Exception):
    """Base of every error offsite raises on purpose.

    :param detail: what the lower layer said, in words for an operator.
    :param fix: overrides the class's ``fix`` for this one error, when the
        raiser knows better (``Fatal(..., fix="point the URL at a folder")``).
    :param fields: values for the class's ``template`` and ``fix``.
    """

    #: The message, filled from ``detail`` and the fields.
    template: ClassVar[str] = "{detail}"
    #: What the operator should do about it; empty when there is nothing to say.
    fix: ClassVar[str] = ""

    def __init__(self, detail: str = "", *, fix: str | None = None, **fields: Any) -> None:
        self.detail = detail
        self.fields = fields
        if fix is not None:
            self.fix = fix  # type: ignore[misc]  # an instance may say more than its class
        super().__init__(detail)

    def _values(self) -> _Blank:
        return _Blank(self.fields, detail=self.detail)

    @property
    def message(self) -> str:
        """The filled template, without the fix."""
        return self.template.format_map(self._values())

    @property
    def hint(self) -> str:
        """The filled fix text ('' when the class has none)."""
        return self.fix.format_map(self._values())

    def __str__(self) -> str:
        hint = self.hint
        return f"{_unstopped(self.message)}. Fix: {hint}" if hint else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class PluginError(OffsiteError):
    """A plugin failed to load or validate, is switched off, or broke the contract.

    A target that needs it cannot run; targets of other plugins are not
    affected (exit code 2).

    :param plugin: the URL scheme it serves (``sftp``).
    :param distribution: the distribution that installs it (``offsite-sftp``).
    """

    template = "plugin {distribution} ({plugin}://): {detail}"
    fix = ("reinstall or upgrade {distribution} "
           "(pip install --upgrade --force-reinstall {distribution})")


class PluginMissing(PluginError):
    """No installed plugin handles the URL scheme ``plugin``; ``distribution``
    is the official one to install, or a description of what is needed."""

    template = "no installed plugin handles '{plugin}://' URLs"
    fix = "install {distribution}"


class UsageError(OffsiteError):
    """The command cannot be carried out as asked: a missing folder, an output
    that exists, options that contradict the data (exit code 2)."""


class ConfigError(OffsiteError):
    """The configuration file is wrong: names the file, the key path and what
    was expected (exit code 2). Nothing runs on a bad configuration."""

    template = "{file}: {key}: {detail}"

    def __init__(self, detail: str = "", *, file: object = "?", key: str = "(file)",
                 **fields: Any) -> None:
        super().__init__(detail, file=str(file), key=key, **fields)
        self.file = str(file)
        self.key = key


class CredentialError(OffsiteError):
    """The credential store cannot be used: a key file with loose permissions,
    a wrong passphrase, a tampered entry (exit code 2)."""

    template = "credentials: {detail}"


class JournalError(OffsiteError):
    """The journal database cannot be opened or is from a newer offsite."""

    template = "journal {file}: {detail}"


class Locked(OffsiteError):
    """Another offsite process is working the job (exit code 75): its lock
    is held. ``holder`` names that process when it is known."""

    fix = ("let it finish (offsite status shows what it does), or pass --wait to start "
           "as soon as it has")


class SourceError(OffsiteError):
    """Reading the local data that was being uploaded failed.

    Not a :class:`TargetError`: nothing is wrong with the target, and the
    upload's partial file stays where it is so a later put can resume.
    """

    template = "reading the source failed: {detail}"


class ImageError(OffsiteError):
    """An image file, or a chain of them, is not what it must be (bad data).

    :param file: the image file concerned.
    :param block: the block number, where one is concerned.
    :param offset: the byte offset in the file, where one is concerned.
    """

    template = "{file}: {detail}{where}"

    def __init__(
        self,
        detail: str = "",
        *,
        file: object = "?",
        block: int | None = None,
        offset: int | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(detail, file=str(file), **fields)
        self.file = str(file)
        self.block = block
        self.offset = offset

    def _values(self) -> _Blank:
        values = super()._values()
        where = []
        if self.block is not None:
            where.append(f"block {self.block}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        values["where"] = f" (at {', '.join(where)})" if where else ""
        return values


class NotAnImage(ImageError):
    """The file does not start with the OFI magic."""

    template = "{file}: not an OFI image ({detail})"
    # Its name says image: a damaged start (the header) or another program's file.
    fix = ("if the backup software wrote it, its header is damaged: take a new full backup; "
           "otherwise move it out of the folder")


class UnsupportedVersion(ImageError):
    """The image was written by a newer, incompatible format version."""

    template = "{file}: OFI format version {version} is not supported by this offsite"
    fix = "upgrade offsite to read it"


class IncompleteImage(ImageError):
    """No valid footer: the image is still being written, or was cut short."""

    template = "{file}: incomplete image ({detail})"
    fix = "wait until the backup software has finished writing it; if it has, the file is truncated"


class CorruptImage(ImageError):
    """A checksum, an index entry or a length does not match: the bytes are damaged."""

    template = "{file}: corrupt image: {detail}{where}"
    fix = "take a new full backup; do not replicate or restore past this image"


class BrokenChain(ImageError):
    """An image does not apply to the state its predecessor leaves (a gap, a foreign parent)."""

    template = "{file}: broken chain: {detail}"
    fix = "the images after the break cannot be restored; take a new full backup"


class TargetError(OffsiteError):
    """Something went wrong at a target, or on the way to it.

    :param detail: what happened, in words for an operator (no secrets).
    :param path: the remote path concerned, relative to the target folder.
    :param step: the step that failed (``resolve``, ``connect``, ``tls``,
        ``auth``, ``folder``, ``put``, ``get``, ``list``, ``delete`` …).
    :param target: the target's name in the job (or its URL).
    :param exc: the library exception this was translated from.
    :param fix: overrides the class's fix text for this error.
    """

    template = "{detail}"
    #: Whether the engine should try again (with backoff).
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str = "",
        *,
        path: str | None = None,
        step: str | None = None,
        target: str | None = None,
        exc: BaseException | None = None,
        fix: str | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(detail, fix=fix, **fields)
        self.path = path
        self.step = step
        self.target = target
        #: The target's ``JOB.TARGET`` name (the session fills it in), so a
        #: fix can name the command to type.
        self.name: str | None = None
        self.exc = exc

    def _values(self) -> _Blank:
        values = super()._values()
        name = self.name or "JOB.TARGET"
        values.update(path=self.path or "", step=self.step or "", target=self.target or "",
                      name=name, job_target=name.replace(".", " ", 1))
        return values

    def __str__(self) -> str:
        where = f"[{self.target}] " if self.target else ""
        step = f"{self.step} failed: " if self.step else ""
        named = self.path and "{path}" not in self.template  # NotFound names it already
        path = f" (remote path '{self.path}')" if named else ""
        hint = self.hint
        message = _unstopped(self.message) if hint and not path else self.message
        fix = f". Fix: {hint}" if hint else ""
        return f"{where}{step}{message}{path}{fix}"

    def scrub(self, secrets: Iterable[str]) -> TargetError:
        """Blank every secret value out of the detail and the fields, also
        percent- or base64-encoded (:mod:`offsite.redact`); returns self."""
        secrets = tuple(secrets)
        self.detail = redact(self.detail, secrets)
        self.fields = {k: redact(v, secrets) if isinstance(v, str) else v
                       for k, v in self.fields.items()}
        self.args = (self.detail,)
        return self


class AuthError(TargetError):
    """The server refused the credentials (wrong password, key, or user)."""

    template = "authentication failed: {detail}"
    fix = (
        "check the user name in the URL and the stored credentials "
        "(offsite credentials set {name})"
    )


class PermissionDenied(TargetError):
    """Authenticated, but the server does not allow this operation here."""

    template = "permission denied: {detail}"
    fix = "give the target's user write access to the target folder, or choose a folder it owns"


class NotFound(TargetError):
    """The remote file or folder does not exist."""

    template = "'{path}' not found{detail_suffix}"

    def _values(self) -> _Blank:
        values = super()._values()
        values["detail_suffix"] = f": {self.detail}" if self.detail else ""
        return values

    @property
    def message(self) -> str:
        # Without a path (a missing bucket or share) the detail says it all:
        # "'' not found: the bucket 'x' does not exist" names nothing.
        return super().message if self.path or not self.detail else self.detail


class Transient(TargetError):
    """A failure that may go away by itself: the engine retries it with backoff."""

    template = "temporary failure: {detail}"
    fix = "none needed if a retry succeeds; if it persists, check the network and the server"
    retryable = True


class ConnectFailed(Transient):
    """The TCP connection was refused, reset, or timed out."""

    template = "cannot connect to {address}: {detail}"
    fix = (
        "check that the server is running and listening on that port, "
        "and that no firewall blocks this machine"
    )


class Fatal(TargetError):
    """A failure that retrying will not cure: misconfiguration, full disk, a bug."""

    template = "{detail}"


class StorageFull(Fatal):
    """The target has no space left, or the user is over quota: retrying
    will not help until someone frees space."""

    template = "no space left at the target: {detail}"
    fix = "free space at the target, or raise the user's quota there"


class ResolveFailed(Fatal):
    """The target's host name does not resolve (DNS)."""

    template = "cannot resolve host '{host}': {detail}"
    fix = "check the host name in the target URL and this machine's DNS settings"


class TLSFailed(Fatal):
    """The TLS handshake failed, usually because the certificate is not trusted."""

    template = "TLS handshake with {host} failed: {detail}"
    fix = (
        "give the CA that signed the server's certificate with the target option ca_file, "
        "or fix the server's certificate (its name must match the host in the URL)"
    )


class HostKeyRejected(Fatal):
    """The SSH server's host key is unknown or does not match known_hosts."""

    template = "host key of {host} is {reason}: {fingerprint}"
    fix = (
        "verify the fingerprint with the server's administrator, then trust it with "
        "offsite check --trust-host-key {job_target} (or add it to known_hosts)"
    )


E = TypeVar("E", bound=BaseException)


def find_cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of type ``kind`` in ``exc``'s chain of causes.

    Libraries wrap what they catch; this finds, say, the damaged image behind
    a plugin's "upload aborted", or the local read error behind it.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


__all__ = [
    "AuthError",
    "BrokenChain",
    "ConfigError",
    "ConnectFailed",
    "CorruptImage",
    "CredentialError",
    "Fatal",
    "HostKeyRejected",
    "ImageError",
    "IncompleteImage",
    "JournalError",
    "Locked",
    "NotAnImage",
    "NotFound",
    "OffsiteError",
    "PermissionDenied",
    "PluginError",
    "PluginMissing",
    "ResolveFailed",
    "SourceError",
    "StorageFull",
    "TLSFailed",
    "TargetError",
    "Transient",
    "UnsupportedVersion",
    "UsageError",
    "find_cause",
]
