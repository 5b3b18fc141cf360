"""Endpoint: URL parsing, and secrets kept out of every repr."""

from __future__ import annotations

import pytest

from offsite.transport import Endpoint


def test_parse_sftp_url() -> None:
    e = Endpoint.from_url("SFTP://backup@vault.example.com:2222/srv/off%20site", name="vault")
    assert (e.scheme, e.username, e.host, e.port, e.path) == (
        "sftp", "backup", "vault.example.com", 2222, "/srv/off site")
    assert e.url == "sftp://backup@vault.example.com:2222/srv/off%20site"
    assert e.label == "vault"


def test_unicode_path_raw_or_percent_encoded() -> None:
    raw = Endpoint.from_url("file:///srv/Sicherung/Größe")
    quoted = Endpoint.from_url("file:///srv/Sicherung/Gr%C3%B6%C3%9Fe")
    assert raw.path == quoted.path == "/srv/Sicherung/Größe"


def test_password_in_url_is_refused() -> None:
    with pytest.raises(ValueError, match="offsite credentials set") as caught:
        Endpoint.from_url("ftp://user:hunter2@host/x")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("url", "why"), [
    ("/just/a/path", "no scheme"),
    ("ftp://host:99999/x", "invalid port"),
    # Each of these used to load and write somewhere else than written down.
    ("file:///folder?x=1", "query string"),
    ("file:///folder?", "query string"),
    ("s3://bucket/folder?versionId=3", "query string"),
    ("file:///folder#frag", "fragment"),
    ("file:///folder#", "fragment"),
    ("file:///fol%00der", "NUL"),
    ("file:///fol\x00der", "NUL"),
    ("file:///fol%0Ader", "U\\+000A"),
    ("sftp://us%1Ber@host/x", "user name"),
    ("file:///a\tb", "U\\+0009"),
])
def test_bad_urls(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Endpoint.from_url(url)


def test_credentials_not_in_repr_and_frozen() -> None:
    e = Endpoint.from_url("s3://bucket/x", credentials={"secret_access_key": "SEKRIT"},
                          options={"region": "eu-central-1"})
    assert "SEKRIT" not in repr(e) and "SEKRIT" not in e.url
    assert e.secrets() == ("SEKRIT",)
    with pytest.raises(TypeError):
        e.credentials["secret_access_key"] = "x"  # type: ignore[index]
    assert e.options["region"] == "eu-central-1"


def test_escaped_query_and_fragment_characters_are_folder_names() -> None:
    e = Endpoint.from_url("file:///srv/what%3F/%23one")
    assert e.path == "/srv/what?/#one"
