"""The encrypted credential store: passwords and keys for the targets.

Each target's secrets (``password``, an SFTP ``private_key`` and its
``passphrase``, S3 ``access_key_id`` and ``secret_access_key``) are kept in
``credentials.json`` in the config folder, one entry per ``JOB.TARGET``. An
entry is the target's fields as one JSON object, encrypted with AES-256-GCM
under a fresh 12-byte random nonce, with the target's name as associated
data: an entry copied to another target's name fails to decrypt instead of
handing one server's password to another. The file itself::

    {"version": 1,
     "kdf": "keyfile" | {"scrypt": {"salt": B64, "n": 32768, "r": 8, "p": 1}},
     "entries": {"JOB.TARGET": {"nonce": B64, "ciphertext": B64}}}

The key comes from one of two places, chosen when the store is created and
recorded in ``kdf``:

* a passphrase in the environment variable :data:`PASSPHRASE_ENV`, stretched
  with scrypt and the salt kept in the file (for machines whose disk may be
  read by others, and for automation that injects secrets at run time);
* otherwise the key file ``key`` beside the store: 32 random bytes, mode
  0600. Like ssh with a loose private key, a key file that its group or other
  users may access is refused.

A store is never opened with the other key source than the one it was made
with: that would either fail confusingly on every entry or, worse, mix
entries under two keys in one file.

Secrets never leave this module except as the return value of
:meth:`CredentialStore.get`: no message, repr or attribute holds a decrypted
value or key material, and nothing is logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeGuard

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from offsite.durable import fsync_dir
from offsite.errors import CredentialError
from offsite.redact import remember

#: The environment variable whose (non-empty) value is the store's passphrase.
PASSPHRASE_ENV = "OFFSITE_PASSPHRASE"  # noqa: S105  (a variable's name, not a secret)
#: The fields a user may store, per the design: password; SFTP private_key (a path or the key
#: text) and passphrase; S3 access_key_id and secret_access_key.
FIELDS: tuple[str, ...] = (
    "password",
    "private_key",
    "passphrase",
    "access_key_id",
    "secret_access_key",
)

STORE_NAME: Final = "credentials.json"
KEY_NAME: Final = "key"
VERSION: Final = 1

_KEY_BYTES: Final = 32  # AES-256
_NONCE_BYTES: Final = 12  # the GCM standard nonce; random is safe at this store's volume
_SALT_BYTES: Final = 16
_TAG_BYTES: Final = 16  # AESGCM appends the tag to the ciphertext
# scrypt's cost: 2**15 * 8 * 128 bytes = 32 MiB and well under a second, the
# interactive setting recommended for it. A file may carry others (a future
# version may raise them); the bounds below only keep a corrupted or hostile
# file from asking for gigabytes of memory.
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_SCRYPT_MAX_N: Final = 2**20
_SCRYPT_MAX_R: Final = 32
_SCRYPT_MAX_P: Final = 16


@dataclass(frozen=True)
class _Scrypt:
    """The scrypt parameters a passphrase store was created with."""

    salt: bytes
    n: int = _SCRYPT_N
    r: int = _SCRYPT_R
    p: int = _SCRYPT_P


@dataclass(frozen=True)
class _Entry:
    """One target's encrypted fields, as stored (nothing here is secret)."""

    nonce: bytes
    ciphertext: bytes


@dataclass
class _Document:
    """The parsed ``credentials.json``: the key source and the encrypted entries.

    :ivar kdf: ``None`` for the key file, else the scrypt parameters.
    """

    kdf: _Scrypt | None
    entries: dict[str, _Entry] = field(default_factory=dict)


class CredentialStore:
    """The credentials of every target, encrypted in one file in the config folder.

    The store keeps nothing but its paths: every call reads the file again and
    derives the key again, so no decrypted value or key outlives the call that
    needed it, and two processes (the CLI setting a password, the replicator
    reading it) see each other's changes.

    :param folder: the config folder; the store lives in ``folder/credentials.json``
        and the key file, when there is no passphrase, in ``folder/key``.
    """

    __slots__ = ("_folder",)

    def __init__(self, folder: Path) -> None:
        self._folder = Path(folder)

    @property
    def _file(self) -> Path:
        return self._folder / STORE_NAME

    @property
    def _key_file(self) -> Path:
        return self._folder / KEY_NAME

    def __repr__(self) -> str:
        return f"CredentialStore({str(self._folder)!r})"

    # -- the public operations -------------------------------------------------

    def set(self, target: str, fields: Mapping[str, str]) -> None:
        """Store ``fields`` as the credentials of ``target``, replacing any it had.

        The first ``set`` creates the store: with the passphrase from
        :data:`PASSPHRASE_ENV` if that is set, else with the key file (created,
        with the folder, if missing).

        :param target: ``"JOB.TARGET"``.
        :param fields: field name to value; names from :data:`FIELDS`, values
            non-empty strings.
        :raises CredentialError: an unknown or empty field, no fields at all, a
            bad target name, or a store that cannot be used (see :meth:`get`).
        """
        _check_target(target)
        plain = _check_fields(fields)
        remember(fields.values())
        passphrase = _passphrase()
        doc = self._load()
        if doc is None or not doc.entries:
            # A new store, or one whose entries were all deleted: nothing is
            # encrypted under the old key source, so the current one is chosen
            # afresh (this is also how a user switches between the two).
            doc = _Document(kdf=_Scrypt(salt=os.urandom(_SALT_BYTES)) if passphrase else None)
            key = self._key(doc, passphrase, create=True)
        else:
            self._check_mode(doc, passphrase)
            key = self._key(doc, passphrase, create=False)
            # A mistyped passphrase would otherwise encrypt this entry under a
            # key that opens none of the others, splitting the store silently.
            self._verify_key(doc, key, prefer_other_than=target)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(nonce, plain, target.encode("utf-8"))
        doc.entries[target] = _Entry(nonce=nonce, ciphertext=ciphertext)
        self._save(doc)

    def get(self, target: str) -> dict[str, str]:
        """The credentials stored for ``target``; ``{}`` if there are none.

        :param target: ``"JOB.TARGET"``.
        :raises CredentialError: a bad target name; the store is unreadable or
            corrupt; it was made with the other key source than the current
            one; the key file is missing or others may access it; the entry
            does not decrypt (wrong passphrase or key, tampering, or an entry
            moved from another target).
        """
        _check_target(target)
        passphrase = _passphrase()
        doc = self._load()
        if doc is None or not doc.entries:
            return {}
        # Before the lookup, so that a target missing because the wrong key
        # source is in use is reported as that, not as "no credentials".
        self._check_mode(doc, passphrase)
        entry = doc.entries.get(target)
        if entry is None:
            return {}
        key = self._key(doc, passphrase, create=False)
        fields = _decrypt(key, target, entry)
        remember(fields.values())  # out of crash reports and tracebacks: offsite.redact
        return fields

    def delete(self, target: str) -> bool:
        """Forget the credentials of ``target``.

        Needs neither the key nor the passphrase: removing an entry reveals
        nothing, and a user who lost the key must still be able to clean up.

        :returns: whether there was anything to delete.
        :raises CredentialError: a bad target name, or an unreadable store.
        """
        _check_target(target)
        doc = self._load()
        if doc is None or target not in doc.entries:
            return False
        del doc.entries[target]
        self._save(doc)
        return True

    def list(self) -> list[str]:
        """The names of the targets with stored credentials, sorted.

        Decrypts nothing, so it needs neither the key nor the passphrase.

        :raises CredentialError: the store is unreadable or corrupt.
        """
        doc = self._load()
        return sorted(doc.entries) if doc is not None else []

    # -- keys ------------------------------------------------------------------

    def _check_mode(self, doc: _Document, passphrase: str | None) -> None:
        """Refuse to use a store with the other key source than it was made with."""
        if doc.kdf is not None and passphrase is None:
            raise CredentialError(f"this store is protected by a passphrase: set {PASSPHRASE_ENV}")
        if doc.kdf is None and passphrase is not None:
            raise CredentialError(
                f"this store ({self._file}) is encrypted with the key file {self._key_file}, "
                f"but {PASSPHRASE_ENV} is set",
                fix=(
                    f"unset {PASSPHRASE_ENV} to use the key file; or, to protect the store "
                    "with the passphrase instead, delete every target's credentials "
                    "(offsite credentials delete JOB.TARGET) and set them again "
                    f"with {PASSPHRASE_ENV} set"
                ),
            )

    def _key(self, doc: _Document, passphrase: str | None, *, create: bool) -> bytes:
        """The 32-byte key for ``doc``: from the passphrase or from the key file."""
        if doc.kdf is not None:
            if passphrase is None:  # callers check the mode first; this guards a slip
                raise CredentialError(
                    f"this store is protected by a passphrase: set {PASSPHRASE_ENV}"
                )
            kdf = doc.kdf
            return Scrypt(salt=kdf.salt, length=_KEY_BYTES, n=kdf.n, r=kdf.r, p=kdf.p).derive(
                passphrase.encode("utf-8")
            )
        return self._read_key_file(create=create)

    def _read_key_file(self, *, create: bool) -> bytes:
        """Read the key file, checking its mode first; create it if asked and missing."""
        path = self._key_file
        try:
            # O_NOFOLLOW: the mode checked must be the key file's own, not a
            # symlink target's that someone else may have placed.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            if not create:
                raise CredentialError(
                    f"the key file {path} is missing, so the stored credentials cannot be "
                    "decrypted",
                    fix=(
                        "restore the key file from a backup; or delete every target's "
                        "credentials (offsite credentials delete JOB.TARGET) and set them again"
                    ),
                ) from None
            return self._create_key_file()
        except OSError as exc:
            raise CredentialError(f"cannot open the key file {path}: {exc.strerror}") from None
        try:
            # fstat on the open file, not stat on the name: nothing can swap the
            # file between the check and the read.
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise CredentialError(f"the key file {path} is not a regular file")
            mode = stat.S_IMODE(st.st_mode)
            # On Windows the mode bits do not reflect the ACLs that decide who
            # may read the file, so the check would only mislead there.
            if os.name == "posix" and mode & 0o077:
                raise CredentialError(
                    f"the key file {path} has mode {mode:04o}: other users may be able to "
                    "read it, so it is not used",
                    fix=f"chmod 600 {path}",
                )
            key = _read_exactly(fd, _KEY_BYTES + 1)
        except OSError as exc:
            raise CredentialError(f"cannot read the key file {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        if len(key) != _KEY_BYTES:
            raise CredentialError(
                f"the key file {path} is damaged: it must hold exactly {_KEY_BYTES} bytes"
            )
        return key

    def _create_key_file(self) -> bytes:
        """Create the key file: 32 random bytes, mode 0600 from the first instant."""
        path = self._key_file
        key = os.urandom(_KEY_BYTES)
        try:
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_EXCL: never overwrite a key another process has just made (its
            # entries would become unreadable); the mode is given at creation
            # so there is no moment when the key is readable by others.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._read_key_file(create=False)
        except OSError as exc:
            raise CredentialError(f"cannot create the key file {path}: {exc.strerror}") from None
        try:
            view = memoryview(key)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise CredentialError(f"cannot write the key file {path}: {exc.strerror}") from None
        os.close(fd)
        fsync_dir(self._folder)
        return key

    def _verify_key(self, doc: _Document, key: bytes, *, prefer_other_than: str) -> None:
        """Check that ``key`` opens the store, by decrypting one of its entries.

        Entries of other targets are tried first, so that a damaged entry can
        still be replaced by setting it again.
        """
        names = sorted(doc.entries, key=lambda name: name == prefer_other_than)
        aead = AESGCM(key)
        for name in names:
            entry = doc.entries[name]
            try:
                aead.decrypt(entry.nonce, entry.ciphertext, name.encode("utf-8"))
            except InvalidTag:
                continue
            return
        raise CredentialError(
            "the current passphrase or key does not decrypt the credentials already "
            "stored: wrong passphrase or key, or the store was tampered with",
            fix=(
                "use the passphrase or key file the store was made with; or delete the "
                "stored credentials (offsite credentials delete JOB.TARGET) and set them again"
            ),
        )

    # -- the file --------------------------------------------------------------

    def _load(self) -> _Document | None:
        """Read and check ``credentials.json``; ``None`` if there is none yet."""
        path = self._file
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialError(f"cannot read {path}: {exc.strerror}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CredentialError(
                f"{path} is corrupt: it is not JSON",
                fix=f"restore {path} from a backup, or remove it and set the credentials again",
            ) from None
        return _parse(data, path)

    def _save(self, doc: _Document) -> None:
        """Write ``doc`` atomically: a 0600 temporary file beside the store, then a rename."""
        path = self._file
        text = json.dumps(_unparse(doc), indent=2) + "\n"
        try:
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            # mkstemp creates the file with mode 0600, in the same folder so
            # the rename is atomic and never crosses a file system.
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{STORE_NAME}.", suffix=".tmp", dir=self._folder
            )
        except OSError as exc:
            raise CredentialError(f"cannot write {path}: {exc.strerror}") from None
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
            fsync_dir(self._folder)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CredentialError(f"cannot write {path}: {exc.strerror}") from None


# -- helpers -------------------------------------------------------------------


def _passphrase() -> str | None:
    """The passphrase from the environment; ``None`` when unset or empty."""
    # An empty value counts as unset: `OFFSITE_PASSPHRASE= offsite ...` is a
    # common way to clear a variable, and an empty passphrase protects nothing.
    passphrase = os.environ.get(PASSPHRASE_ENV) or None
    if passphrase:
        remember([passphrase])
    return passphrase


def _check_target(target: object) -> None:
    """Refuse a target name that is not ``JOB.TARGET``."""
    if not isinstance(target, str):
        raise CredentialError(f"a target name must be a string, not {type(target).__name__}")
    job, dot, name = target.partition(".")
    if not (job and dot and name) or any(ord(c) < 0x20 or c == "\x7f" for c in target):
        raise CredentialError(f"{target!r} is not a target name: write it as JOB.TARGET")


def _check_fields(fields: Mapping[str, str]) -> bytes:
    """Check the fields to store and return them as the JSON to encrypt.

    Messages name fields, never values.
    """
    if not isinstance(fields, Mapping) or not fields:
        raise CredentialError(
            "no credential fields given",
            fix=f"give at least one of: {', '.join(FIELDS)}",
        )
    unknown = [name for name in fields if name not in FIELDS]
    if unknown:
        # The unknown names are not echoed: with hand-written JSON on stdin a
        # secret easily lands in the name's place ({"hunter2": ""}).
        count = "an unknown field" if len(unknown) == 1 else f"{len(unknown)} unknown fields"
        raise CredentialError(
            f"{count} given (names not shown, in case one is a secret)",
            fix=f"use only these fields: {', '.join(FIELDS)}",
        )
    for name, value in fields.items():
        if not isinstance(value, str):
            raise CredentialError(
                f"the value of '{name}' must be a string, not {type(value).__name__}"
            )
        if not value:
            # An empty password is almost always a slip (an empty prompt
            # answer, a missing variable); a field that does not apply is
            # better left out.
            raise CredentialError(
                f"the value of '{name}' is empty", fix="leave out fields that do not apply"
            )
    return json.dumps(dict(sorted(fields.items())), separators=(",", ":")).encode("utf-8")


def _decrypt(key: bytes, target: str, entry: _Entry) -> dict[str, str]:
    """Decrypt one entry; a wrong key, tampering or a moved entry all fail the tag."""
    try:
        plain = AESGCM(key).decrypt(entry.nonce, entry.ciphertext, target.encode("utf-8"))
    except InvalidTag:
        raise CredentialError(
            f"cannot decrypt the credentials of {target}: wrong passphrase or key, "
            "or the store was tampered with"
        ) from None
    try:
        value = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        value = None
    # Authenticated but malformed means it was written by something else than
    # this module with the right key; say so without echoing any of it.
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise CredentialError(f"the credentials of {target} decrypt to something unexpected")
    return value


def _read_exactly(fd: int, limit: int) -> bytes:
    """Read up to ``limit`` bytes from ``fd`` (short reads are retried)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unparse(doc: _Document) -> dict[str, Any]:
    """``doc`` as the JSON object of the file format."""
    kdf: str | dict[str, Any]
    if doc.kdf is None:
        kdf = "keyfile"
    else:
        params = doc.kdf
        kdf = {"scrypt": {"salt": _b64(params.salt), "n": params.n, "r": params.r, "p": params.p}}
    entries = {
        name: {"nonce": _b64(entry.nonce), "ciphertext": _b64(entry.ciphertext)}
        for name, entry in sorted(doc.entries.items())
    }
    return {"version": VERSION, "kdf": kdf, "entries": entries}


def _parse(data: object, path: Path) -> _Document:
    """Check the structure of the file's JSON and turn it into a :class:`_Document`."""

    def corrupt(what: str) -> CredentialError:
        return CredentialError(
            f"{path} is corrupt: {what}",
            fix=f"restore {path} from a backup, or remove it and set the credentials again",
        )

    if not isinstance(data, dict):
        raise corrupt("it is not a JSON object")
    version = data.get("version")
    if not _is_int(version):
        raise corrupt("no format version")
    if version != VERSION:
        if version > VERSION:
            raise CredentialError(
                f"{path} was written in format version {version} by a newer offsite",
                fix="upgrade offsite to read it",
            )
        raise corrupt(f"unknown format version {version}")

    raw_kdf = data.get("kdf")
    kdf: _Scrypt | None
    if raw_kdf == "keyfile":
        kdf = None
    elif isinstance(raw_kdf, dict) and list(raw_kdf) == ["scrypt"] and isinstance(
        raw_kdf["scrypt"], dict
    ):
        params = raw_kdf["scrypt"]
        n, r, p = params.get("n"), params.get("r"), params.get("p")
        salt = _unb64(params.get("salt"))
        if (
            salt is None
            or len(salt) < _SALT_BYTES
            or not (_is_int(n) and 2 <= n <= _SCRYPT_MAX_N and n & (n - 1) == 0)
            or not (_is_int(r) and 1 <= r <= _SCRYPT_MAX_R)
            or not (_is_int(p) and 1 <= p <= _SCRYPT_MAX_P)
        ):
            raise corrupt("bad scrypt parameters")
        kdf = _Scrypt(salt=salt, n=n, r=r, p=p)
    else:
        raise corrupt("'kdf' must be \"keyfile\" or {\"scrypt\": {...}}")

    raw_entries = data.get("entries")
    if not isinstance(raw_entries, dict):
        raise corrupt("'entries' must be an object")
    entries: dict[str, _Entry] = {}
    for name, raw in raw_entries.items():
        nonce = _unb64(raw.get("nonce")) if isinstance(raw, dict) else None
        ciphertext = _unb64(raw.get("ciphertext")) if isinstance(raw, dict) else None
        # The GCM tag alone is 16 bytes, so anything shorter cannot be an entry.
        if (
            nonce is None
            or len(nonce) != _NONCE_BYTES
            or ciphertext is None
            or len(ciphertext) < _TAG_BYTES
        ):
            raise corrupt(f"the entry of {name} is malformed")
        entries[name] = _Entry(nonce=nonce, ciphertext=ciphertext)
    return _Document(kdf=kdf, entries=entries)


def _is_int(value: object) -> TypeGuard[int]:
    # JSON true/false arrive as bool, a subclass of int: not a number here.
    return isinstance(value, int) and not isinstance(value, bool)


def _unb64(value: object) -> bytes | None:
    """Decode strict base64; ``None`` for anything else."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


__all__ = ["FIELDS", "PASSPHRASE_ENV", "CredentialStore"]
