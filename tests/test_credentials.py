"""The encrypted credential store: round trips, key sources, refusals, and no leaks."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import offsite.credentials as credentials
from offsite.credentials import FIELDS, PASSPHRASE_ENV, CredentialStore
from offsite.errors import CredentialError

SECRET = "s3cr3t-Canary-\u00e9\u2603-value"
PASSPHRASE = "correct horse battery staple"
DECRYPT_FAILED = (
    "cannot decrypt the credentials of {}: wrong passphrase or key, "
    "or the store was tampered with"
)


@pytest.fixture(autouse=True)
def _no_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell has, each test starts in key-file mode."""
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A config folder that does not exist yet (the store creates it)."""
    return tmp_path / "config"


@pytest.fixture
def store(folder: Path) -> CredentialStore:
    return CredentialStore(folder)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "credentials.json").read_text("utf-8"))
    return data


def save(folder: Path, data: dict[str, Any]) -> None:
    (folder / "credentials.json").write_text(json.dumps(data), "utf-8")


def flip(b64: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")


# -- round trips ---------------------------------------------------------------


def test_round_trip_with_the_key_file(store: CredentialStore, folder: Path) -> None:
    store.set("nightly.vault", {"password": SECRET})
    store.set("nightly.s3", {"access_key_id": "AKIA1", "secret_access_key": SECRET})

    assert store.get("nightly.vault") == {"password": SECRET}
    assert store.get("nightly.s3") == {"access_key_id": "AKIA1", "secret_access_key": SECRET}
    # A second store object (another process) reads the same thing from disk.
    assert CredentialStore(folder).get("nightly.vault") == {"password": SECRET}
    assert load(folder)["kdf"] == "keyfile"


def test_get_unknown_target_is_empty(store: CredentialStore) -> None:
    assert store.get("nightly.vault") == {}  # no store at all
    store.set("nightly.vault", {"password": SECRET})
    assert store.get("nightly.other") == {}


def test_set_replaces_all_fields(store: CredentialStore) -> None:
    store.set("nightly.sftp", {"private_key": "/home/me/.ssh/id", "passphrase": SECRET})
    store.set("nightly.sftp", {"password": "other"})
    assert store.get("nightly.sftp") == {"password": "other"}


def test_every_design_field_is_accepted(store: CredentialStore) -> None:
    fields = {name: f"value of {name}" for name in FIELDS}
    store.set("job.all", fields)
    assert store.get("job.all") == fields


def test_fresh_nonce_per_encryption(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET})
    first = load(folder)["entries"]["job.a"]
    store.set("job.a", {"password": SECRET})
    second = load(folder)["entries"]["job.a"]
    assert len(base64.b64decode(first["nonce"])) == 12
    assert first["nonce"] != second["nonce"]
    assert first["ciphertext"] != second["ciphertext"]


# -- files and modes -----------------------------------------------------------


def test_files_are_private(store: CredentialStore, folder: Path) -> None:
    store.set("nightly.vault", {"password": SECRET})
    assert mode(folder) == 0o700
    assert mode(folder / "key") == 0o600
    assert (folder / "key").stat().st_size == 32
    assert mode(folder / "credentials.json") == 0o600
    # The atomic write leaves no temporary file behind.
    assert sorted(p.name for p in folder.iterdir()) == ["credentials.json", "key"]


def test_rewrites_stay_private(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET})
    (folder / "credentials.json").chmod(0o644)
    store.set("job.b", {"password": SECRET})
    assert mode(folder / "credentials.json") == 0o600
    assert store.delete("job.a")
    assert mode(folder / "credentials.json") == 0o600


def test_existing_key_file_is_reused(store: CredentialStore, folder: Path) -> None:
    folder.mkdir()
    key = folder / "key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o600)
    store.set("job.a", {"password": SECRET})
    assert key.read_bytes() == b"k" * 32
    assert store.get("job.a") == {"password": SECRET}


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o660])
def test_loose_key_file_is_refused(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch, loose: int
) -> None:
    store.set("nightly.vault", {"password": SECRET})
    key = folder / "key"
    key.chmod(loose)
    before = (folder / "credentials.json").read_bytes()

    # Nothing may be decrypted or encrypted with a key others could read.
    def no_cipher(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cipher was used despite the loose key file")

    monkeypatch.setattr(credentials, "AESGCM", no_cipher)

    for attempt in (
        lambda: store.get("nightly.vault"),
        lambda: store.set("nightly.vault", {"password": "new"}),
    ):
        with pytest.raises(CredentialError) as info:
            attempt()
        text = str(info.value)
        assert str(key) in text
        assert f"{loose:04o}" in text
        assert f"chmod 600 {key}" in text
    assert (folder / "credentials.json").read_bytes() == before


def test_loose_key_file_refused_for_a_new_store(store: CredentialStore, folder: Path) -> None:
    folder.mkdir()
    key = folder / "key"
    key.write_bytes(b"k" * 32)
    key.chmod(0o644)
    with pytest.raises(CredentialError, match="0644"):
        store.set("job.a", {"password": SECRET})
    assert not (folder / "credentials.json").exists()


def test_missing_key_file_with_entries(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET})
    (folder / "key").unlink()
    with pytest.raises(CredentialError, match=r"key file .* is missing"):
        store.get("job.a")
    with pytest.raises(CredentialError, match=r"key file .* is missing"):
        store.set("job.b", {"password": SECRET})
    assert not (folder / "key").exists()  # never silently replaced


def test_damaged_key_file(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET})
    (folder / "key").write_bytes(b"short")
    with pytest.raises(CredentialError, match="32 bytes"):
        store.get("job.a")


def test_other_key_file_cannot_decrypt(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET})
    (folder / "key").write_bytes(os.urandom(32))
    with pytest.raises(CredentialError) as info:
        store.get("job.a")
    assert info.value.detail == DECRYPT_FAILED.format("job.a")


# -- passphrase ----------------------------------------------------------------


def test_passphrase_round_trip(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    store.set("nightly.vault", {"password": SECRET})
    store.set("nightly.sftp", {"private_key": "-----BEGIN KEY-----", "passphrase": SECRET})

    assert store.get("nightly.vault") == {"password": SECRET}
    assert store.get("nightly.sftp")["passphrase"] == SECRET
    assert not (folder / "key").exists()
    params = load(folder)["kdf"]["scrypt"]
    assert (params["n"], params["r"], params["p"]) == (2**15, 8, 1)
    assert len(base64.b64decode(params["salt"])) == 16
    assert mode(folder / "credentials.json") == 0o600


def test_wrong_passphrase(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    store.set("nightly.vault", {"password": SECRET})
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE + "!")
    with pytest.raises(CredentialError) as info:
        store.get("nightly.vault")
    assert info.value.detail == DECRYPT_FAILED.format("nightly.vault")


def test_wrong_passphrase_cannot_add_entries(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    store.set("job.a", {"password": SECRET})
    before = (folder / "credentials.json").read_bytes()
    monkeypatch.setenv(PASSPHRASE_ENV, "typo")
    with pytest.raises(CredentialError, match="wrong passphrase or key"):
        store.set("job.b", {"password": SECRET})
    assert (folder / "credentials.json").read_bytes() == before


def test_empty_passphrase_counts_as_unset(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "")
    store.set("job.a", {"password": SECRET})
    assert load(folder)["kdf"] == "keyfile"
    assert (folder / "key").exists()


# -- switching key sources -------------------------------------------------------


def test_passphrase_store_refuses_the_key_file(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    store.set("job.a", {"password": SECRET})
    monkeypatch.delenv(PASSPHRASE_ENV)
    for attempt in (lambda: store.get("job.a"), lambda: store.set("job.b", {"password": "x"})):
        with pytest.raises(CredentialError) as info:
            attempt()
        assert info.value.detail == (
            "this store is protected by a passphrase: set OFFSITE_PASSPHRASE"
        )
    assert not (folder / "key").exists()


def test_key_file_store_refuses_a_passphrase(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.set("job.a", {"password": SECRET})
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    for attempt in (lambda: store.get("job.a"), lambda: store.set("job.b", {"password": "x"})):
        with pytest.raises(CredentialError) as info:
            attempt()
        text = str(info.value)
        assert "key file" in text
        assert f"unset {PASSPHRASE_ENV}" in text  # the way back
        assert "delete" in text  # the way forward
    assert load(folder)["kdf"] == "keyfile"


def test_emptied_store_takes_the_current_key_source(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.set("job.a", {"password": SECRET})
    assert store.delete("job.a")
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    store.set("job.a", {"password": SECRET})
    assert "scrypt" in load(folder)["kdf"]
    assert store.get("job.a") == {"password": SECRET}


# -- tampering -------------------------------------------------------------------


@pytest.mark.parametrize("part", ["ciphertext", "nonce"])
@pytest.mark.parametrize("index", [0, -1])
def test_tampered_entry(store: CredentialStore, folder: Path, part: str, index: int) -> None:
    store.set("job.a", {"password": SECRET})
    data = load(folder)
    data["entries"]["job.a"][part] = flip(data["entries"]["job.a"][part], index)
    save(folder, data)
    with pytest.raises(CredentialError) as info:
        store.get("job.a")
    assert info.value.detail == DECRYPT_FAILED.format("job.a")


def test_tampered_entry_in_passphrase_mode(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    store.set("job.a", {"password": SECRET})
    data = load(folder)
    data["entries"]["job.a"]["ciphertext"] = flip(data["entries"]["job.a"]["ciphertext"], 3)
    save(folder, data)
    with pytest.raises(CredentialError, match="tampered"):
        store.get("job.a")


def test_entry_moved_to_another_target(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET})
    store.set("job.b", {"password": "b's own"})
    data = load(folder)
    data["entries"]["job.b"] = data["entries"]["job.a"]
    data["entries"]["job.c"] = data["entries"]["job.a"]
    save(folder, data)
    assert store.get("job.a") == {"password": SECRET}
    for name in ("job.b", "job.c"):
        with pytest.raises(CredentialError) as info:
            store.get(name)
        assert info.value.detail == DECRYPT_FAILED.format(name)


def test_damaged_entry_can_be_replaced(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET})
    store.set("job.b", {"password": "b"})
    data = load(folder)
    data["entries"]["job.a"]["ciphertext"] = flip(data["entries"]["job.a"]["ciphertext"])
    save(folder, data)
    store.set("job.a", {"password": "new"})
    assert store.get("job.a") == {"password": "new"}


# -- input checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"password": "x", "token": "y"}, "unknown field"),
        ({"user": "x"}, "unknown field"),
        ({}, "no credential fields"),
        ({"password": ""}, "empty"),
        ({"password": 1234}, "must be a string"),
    ],
)
def test_bad_fields_refused(
    store: CredentialStore, folder: Path, fields: dict[str, Any], expected: str
) -> None:
    with pytest.raises(CredentialError, match=expected):
        store.set("job.a", fields)
    assert not (folder / "credentials.json").exists()


def test_unknown_field_names_are_not_echoed(store: CredentialStore) -> None:
    # A secret typed where the name goes must not come back in the message.
    with pytest.raises(CredentialError) as info:
        store.set("job.a", {"password": "x", SECRET: "y", "token": "z"})
    text = str(info.value)
    assert "2 unknown fields" in text
    assert ", ".join(FIELDS) in text  # the fix lists the allowed fields
    assert SECRET not in text


@pytest.mark.parametrize("name", ["", "job", ".target", "job.", "job.a\nb", "job.\x00"])
def test_bad_target_names_refused(store: CredentialStore, folder: Path, name: str) -> None:
    with pytest.raises(CredentialError, match=r"JOB\.TARGET"):
        store.set(name, {"password": SECRET})
    with pytest.raises(CredentialError, match=r"JOB\.TARGET"):
        store.get(name)
    with pytest.raises(CredentialError, match=r"JOB\.TARGET"):
        store.delete(name)
    assert not folder.exists()


# -- delete and list -----------------------------------------------------------------


def test_delete_and_list(store: CredentialStore, folder: Path) -> None:
    assert store.list() == []
    assert store.delete("job.a") is False  # nothing stored yet
    for name in ("nightly.vault", "archive.s3", "nightly.b2"):
        store.set(name, {"password": SECRET})
    assert store.list() == ["archive.s3", "nightly.b2", "nightly.vault"]

    assert store.delete("nightly.b2") is True
    assert store.delete("nightly.b2") is False
    assert store.list() == ["archive.s3", "nightly.vault"]
    assert store.get("nightly.b2") == {}
    assert store.get("nightly.vault") == {"password": SECRET}


def test_list_and_delete_need_no_key(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    store.set("job.a", {"password": SECRET})
    store.set("job.b", {"password": SECRET})
    monkeypatch.delenv(PASSPHRASE_ENV)

    def no_cipher(*args: object, **kwargs: object) -> None:
        raise AssertionError("list/delete must not decrypt")

    monkeypatch.setattr(credentials, "AESGCM", no_cipher)
    monkeypatch.setattr(credentials, "Scrypt", no_cipher)
    assert store.list() == ["job.a", "job.b"]
    assert store.delete("job.a") is True
    assert store.list() == ["job.b"]


# -- corrupt files -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"not json {",
        b"\xff\xfe\x00garbage",
        b"[]",
        b'{"version": 0, "kdf": "keyfile", "entries": {}}',
        b'{"version": "1", "kdf": "keyfile", "entries": {}}',
        b'{"version": true, "kdf": "keyfile", "entries": {}}',
        b'{"version": 1, "kdf": "magic", "entries": {}}',
        b'{"version": 1, "kdf": {"scrypt": {"salt": "AAAA", "n": 3, "r": 8, "p": 1}}, '
        b'"entries": {}}',
        b'{"version": 1, "kdf": "keyfile", "entries": []}',
        b'{"version": 1, "kdf": "keyfile", "entries": {"job.a": {"nonce": "!!", '
        b'"ciphertext": "AAAA"}}}',
        b'{"version": 1, "kdf": "keyfile", "entries": {"job.a": "x"}}',
    ],
)
def test_corrupt_store_names_the_file(store: CredentialStore, folder: Path, content: bytes) -> None:
    folder.mkdir()
    (folder / "credentials.json").write_bytes(content)
    for attempt in (
        store.list,
        lambda: store.get("job.a"),
        lambda: store.delete("job.a"),
        lambda: store.set("job.a", {"password": SECRET}),
    ):
        with pytest.raises(CredentialError) as info:
            attempt()
        assert str(folder / "credentials.json") in str(info.value)
    assert (folder / "credentials.json").read_bytes() == content  # never overwritten


def test_newer_format_version(store: CredentialStore, folder: Path) -> None:
    folder.mkdir()
    save(folder, {"version": 2, "kdf": "keyfile", "entries": {}})
    with pytest.raises(CredentialError, match="newer offsite") as info:
        store.list()
    assert str(folder / "credentials.json") in str(info.value)


# -- secrets never leak ----------------------------------------------------------------


def _failures(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CredentialError]:
    """Provoke every refusal the store has while holding SECRET, yield the errors."""

    def caught(action: Callable[[], object]) -> CredentialError:
        with pytest.raises(CredentialError) as info:
            action()
        return info.value

    monkeypatch.setenv(PASSPHRASE_ENV, SECRET)  # the passphrase is a secret too
    store.set("job.a", {"password": SECRET, "passphrase": SECRET})
    store.set("job.b", {"secret_access_key": SECRET})
    monkeypatch.setenv(PASSPHRASE_ENV, SECRET + "x")
    yield caught(lambda: store.get("job.a"))  # wrong passphrase
    yield caught(lambda: store.set("job.c", {"password": SECRET}))  # key check on set
    monkeypatch.delenv(PASSPHRASE_ENV)
    yield caught(lambda: store.get("job.a"))  # passphrase store, no passphrase
    yield caught(lambda: store.set("job.a", {SECRET: SECRET}))  # unknown field
    yield caught(lambda: store.set("job.a", {"password": ""}))
    monkeypatch.setenv(PASSPHRASE_ENV, SECRET)
    data = load(folder)
    data["entries"]["job.b"] = data["entries"]["job.a"]  # moved entry
    save(folder, data)
    yield caught(lambda: store.get("job.b"))

    # The same in key-file mode.
    monkeypatch.delenv(PASSPHRASE_ENV)
    other = CredentialStore(folder / "second")
    other.set("job.a", {"password": SECRET})
    monkeypatch.setenv(PASSPHRASE_ENV, SECRET)
    yield caught(lambda: other.get("job.a"))  # key-file store, passphrase set
    monkeypatch.delenv(PASSPHRASE_ENV)
    (folder / "second" / "key").chmod(0o644)
    yield caught(lambda: other.get("job.a"))
    (folder / "second" / "key").chmod(0o600)
    data = load(folder / "second")
    data["entries"]["job.a"]["ciphertext"] = flip(data["entries"]["job.a"]["ciphertext"])
    save(folder / "second", data)
    yield caught(lambda: other.get("job.a"))


def test_secret_never_in_errors(
    store: CredentialStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors = list(_failures(store, folder, monkeypatch))
    assert len(errors) == 9
    for error in errors:
        for text in (str(error), repr(error), error.detail, repr(error.args), repr(error.fields)):
            assert SECRET not in text
        # A wrapped library exception could carry data too: there is none.
        assert error.__cause__ is None


def test_secret_never_in_files_or_repr(store: CredentialStore, folder: Path) -> None:
    store.set("job.a", {"password": SECRET, "passphrase": SECRET})
    assert store.get("job.a")["password"] == SECRET  # decrypted at least once
    raw = (folder / "credentials.json").read_bytes()
    for encoded in (SECRET.encode("utf-8"), json.dumps(SECRET).encode("ascii")):
        assert encoded not in raw
    assert base64.b64encode(SECRET.encode("utf-8")) not in raw
    assert repr(store) == f"CredentialStore({str(folder)!r})"
    # The store keeps nothing but its folder: no decrypted value, no key.
    state = [getattr(store, name) for name in type(store).__slots__]
    assert state == [folder]
    assert not hasattr(store, "__dict__")
