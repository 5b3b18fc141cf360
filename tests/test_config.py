"""offsite.toml: loading, defaults, every refusal with its key path, warnings."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offsite.config import (
    DEFAULT_TYPES,
    Config,
    Job,
    TargetConfig,
    default_config_path,
    parse_bwlimit,
)
from offsite.errors import ConfigError

FULL = """
[[job]]
name = "nightly"
destination = "/srv/backup/images"

  [[job.target]]
  name = "vault"
  url = "sftp://backup@vault.example.com:2222/srv/offsite"
  priority = 2
  retries = 7
  mirror = false
  types = ["incremental", "full"]
  new_images_only = true
  new_sets_only = true
  subfolder = "/offsite//nightly/./"
  bwlimit = "20M"
  [job.target.options]
  known_hosts = "~/.ssh/known_hosts"
  passive = true

  [[job.target]]
  name = "cloud_2"
  url = "s3://bucket/folder"

[[job]]
name = "weekly-1"
destination = "images"

  [[job.target]]
  name = "local"
  url = "file:///mnt/usb/offsite"
"""

MINIMAL = """
[[job]]
name = "nightly"
destination = "/srv/images"
  [[job.target]]
  name = "vault"
  url = "file:///mnt/offsite"
"""


def load(text: str, tmp_path: Path, **kwargs: object) -> Config:
    """Write ``text`` as offsite.toml in tmp_path and load it."""
    path = tmp_path / "offsite.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return Config.load(path, **kwargs)  # type: ignore[arg-type]


def target_text(extra: str = "", *, url: str = "file:///mnt/offsite", name: str = "vault") -> str:
    """A one-job, one-target file with ``extra`` lines in the target."""
    return (
        '[[job]]\nname = "nightly"\ndestination = "/srv/images"\n'
        f'[[job.target]]\nname = "{name}"\nurl = "{url}"\n{extra}\n'
    )


def refused(text: str, tmp_path: Path, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(text, tmp_path, **kwargs)
    error = caught.value
    assert error.file == str(tmp_path / "offsite.toml")
    return error


# -- loading -----------------------------------------------------------------------


def test_full_example_loads_every_key(tmp_path: Path) -> None:
    config = load(FULL, tmp_path)
    assert config.path == tmp_path / "offsite.toml"
    assert config.folder == tmp_path
    assert config.warnings == ()
    assert [j.name for j in config.jobs] == ["nightly", "weekly-1"]
    nightly = config.job("nightly")
    assert nightly.destination == Path("/srv/backup/images")
    vault, cloud = nightly.targets
    assert vault == nightly.target("vault")
    assert (vault.name, vault.url, vault.priority, vault.retries, vault.mirror) == (
        "vault", "sftp://backup@vault.example.com:2222/srv/offsite", 2, 7, False)
    assert vault.types == ("full", "incremental")  # DEFAULT_TYPES order
    assert vault.new_images_only is True and vault.new_sets_only is True
    assert vault.subfolder == "offsite/nightly"
    assert vault.bwlimit == 20 * 1024 * 1024
    assert dict(vault.options) == {"known_hosts": "~/.ssh/known_hosts", "passive": True}
    assert vault.scheme == "sftp"
    e = vault.endpoint
    assert (e.scheme, e.username, e.host, e.port, e.path, e.name) == (
        "sftp", "backup", "vault.example.com", 2222, "/srv/offsite", "nightly.vault")
    assert dict(e.options) == dict(vault.options)
    assert dict(e.credentials) == {}
    assert cloud.scheme == "s3" and cloud.endpoint.name == "nightly.cloud_2"


def test_defaults(tmp_path: Path) -> None:
    target = load(MINIMAL, tmp_path).jobs[0].targets[0]
    assert (target.priority, target.retries, target.mirror) == (1, 3, False)
    assert target.types == DEFAULT_TYPES == ("full", "incremental", "other")
    assert (target.new_images_only, target.new_sets_only) == (False, False)
    assert (target.subfolder, target.bwlimit, dict(target.options)) == ("", None, {})


def test_values_are_frozen(tmp_path: Path) -> None:
    target = load(MINIMAL, tmp_path).jobs[0].targets[0]
    with pytest.raises(AttributeError):
        target.retries = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        target.options["x"] = 1  # type: ignore[index]


def test_relative_destination_is_relative_to_the_config_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    job = load(FULL, tmp_path).job("weekly-1")
    assert job.destination == tmp_path / "images"
    assert job.destination.is_absolute()


def test_relative_config_path_is_made_absolute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "offsite.toml").write_text(FULL)
    monkeypatch.chdir(tmp_path)
    config = Config.load(Path("offsite.toml"))
    assert config.path == tmp_path / "offsite.toml"
    assert config.job("weekly-1").destination == tmp_path / "images"


def test_destination_existence_is_not_checked(tmp_path: Path) -> None:
    text = MINIMAL.replace("/srv/images", str(tmp_path / "does-not-exist"))
    assert load(text, tmp_path).jobs[0].destination == tmp_path / "does-not-exist"


def test_from_text_needs_no_file(tmp_path: Path) -> None:
    config = Config.from_text(MINIMAL, tmp_path / "nowhere" / "offsite.toml")
    assert config.folder == tmp_path / "nowhere"
    assert config.jobs[0].name == "nightly"


def test_schemes_that_are_installed_pass(tmp_path: Path) -> None:
    config = load(FULL, tmp_path, schemes=["SFTP", "s3", "file"])
    assert [t.scheme for j in config.jobs for t in j.targets] == ["sftp", "s3", "file"]


def test_unknown_job_and_target_lookups(tmp_path: Path) -> None:
    config = load(FULL, tmp_path)
    with pytest.raises(ConfigError, match="nightly, weekly-1") as caught:
        config.job("hourly")
    assert caught.value.key == "job"
    with pytest.raises(ConfigError, match="its targets are: local") as caught:
        config.job("weekly-1").target("vault")
    assert caught.value.key == "job[1].target"
    assert caught.value.file == str(tmp_path / "offsite.toml")


def test_types_can_be_built_directly() -> None:
    from offsite.transport import Endpoint

    target = TargetConfig(name="t", url="file:///x", endpoint=Endpoint.from_url("file:///x"))
    job = Job(name="j", destination=Path("/d"), targets=(target,))
    assert job.target("t") is target and target.types == DEFAULT_TYPES


# -- bwlimit -----------------------------------------------------------------------

MIB = 1024 * 1024


@pytest.mark.parametrize(("value", "expected"), [
    ("20M", 20 * MIB),
    ("20m", 20 * MIB),
    ("20MiB", 20 * MIB),
    ("20Mi", 20 * MIB),
    ("20 mib", 20 * MIB),
    ("512K", 512 * 1024),
    ("512k", 512 * 1024),
    ("1G", 1024**3),
    ("1.5M", 3 * MIB // 2),
    ("1000", 1000),
    ("100B", 100),
    (1000, 1000),
    (1, 1),
    ("0", None),
    (0, None),
    ("off", None),
    ("OFF", None),
    ("0M", None),
])
def test_bwlimit_accepted(value: object, expected: int | None) -> None:
    assert parse_bwlimit(value, "job[0].target[0].bwlimit", Path("/c/offsite.toml")) == expected


@pytest.mark.parametrize("value", [
    "-5", -5, "fast", True, False, 1.5, "", "20MB", "20 T", "0.5", "2K5", None,
    ["20M"],
])
def test_bwlimit_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="bytes per second") as caught:
        parse_bwlimit(value, "job[0].target[2].bwlimit", Path("/c/offsite.toml"))
    assert caught.value.key == "job[0].target[2].bwlimit"
    assert caught.value.file == "/c/offsite.toml"
    assert repr(value)[:20] in str(caught.value)


def test_bwlimit_in_file(tmp_path: Path) -> None:
    assert load(target_text('bwlimit = "512K"'), tmp_path).jobs[0].targets[0].bwlimit == 524288
    error = refused(target_text('bwlimit = "fast"'), tmp_path)
    assert error.key == "job[0].target[0].bwlimit"


# -- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key", "fragment"), [
    # unknown keys, at every level
    ('colour = "red"\n' + MINIMAL, "colour", "allowed here are: job"),
    (MINIMAL.replace('name = "nightly"', 'name = "nightly"\nkeep = 3'),
     "job[0].keep", "allowed here are: name, destination, settle, target"),
    (target_text("retry = 3"), "job[0].target[0].retry", "unknown key 'retry'"),
    (target_text('"odd key" = 3'), 'job[0].target[0]."odd key"', "unknown key 'odd key'"),
    # wrong types
    (target_text('retries = "three"'), "job[0].target[0].retries",
     "expected an integer from 0 to 100, found 'three' (str)"),
    (target_text("retries = true"), "job[0].target[0].retries",
     "expected an integer from 0 to 100, found True (bool)"),
    (target_text("retries = 101"), "job[0].target[0].retries", "found 101 (int)"),
    (target_text("retries = -1"), "job[0].target[0].retries", "found -1 (int)"),
    (target_text("retries = 2.0"), "job[0].target[0].retries", "found 2.0 (float)"),
    (target_text("priority = -1"), "job[0].target[0].priority",
     "expected an integer of at least 0, found -1"),
    (target_text("priority = false"), "job[0].target[0].priority", "False (bool)"),
    (target_text('mirror = "yes"'), "job[0].target[0].mirror",
     "expected a boolean (true or false, not in quotes), found 'yes' (str)"),
    (target_text('new_images_only = "true"'), "job[0].target[0].new_images_only", "(str)"),
    (target_text("new_sets_only = 1"), "job[0].target[0].new_sets_only", "found 1 (int)"),
    (target_text('types = "full"'), "job[0].target[0].types", "found 'full' (str)"),
    (target_text("types = []"), "job[0].target[0].types", "found an empty array"),
    (target_text('types = ["full", "daily"]'), "job[0].target[0].types", "'daily' (str) in it"),
    (target_text('types = ["full", "full"]'), "job[0].target[0].types",
     "'full' more than once"),
    (target_text("types = [1]"), "job[0].target[0].types", "1 (int) in it"),
    (target_text("subfolder = 5"), "job[0].target[0].subfolder", "found 5 (int)"),
    (target_text('options = "region=eu"'), "job[0].target[0].options", "expected a table"),
    (target_text(name="vault").replace('url = "file:///mnt/offsite"', "url = 42"),
     "job[0].target[0].url", "found 42 (int)"),
    (MINIMAL.replace('"nightly"', "7"), "job[0].name", "found 7 (int)"),
    (MINIMAL.replace('"/srv/images"', "[1]"), "job[0].destination", "found [1] (array)"),
    (MINIMAL.replace('"/srv/images"', '""'), "job[0].destination", "empty string"),
    ('job = "nightly"', "job", "expected an array of tables ([[job]]), found 'nightly' (str)"),
    ("job = [1]", "job[0]", "expected a table"),
    ('[job]\nname = "x"', "job", "write [[job]]"),
    (MINIMAL.replace("[[job.target]]", "[job.target]"), "job[0].target", "write [[job.target]]"),
    # names
    (MINIMAL.replace('"nightly"', '"night.ly"'), "job[0].name", "no dots"),
    (target_text(name="my vault"), "job[0].target[0].name", "found 'my vault' (str)"),
    (target_text(name=""), "job[0].target[0].name", "found '' (str)"),
    (target_text(name="x" * 65), "job[0].target[0].name", "1 to 64"),
    # required keys
    ("", "job", "found none"),
    ("job = []", "job", "found none"),
    ('[[job]]\ndestination = "/d"\n[[job.target]]\nname = "a"\nurl = "file:///x"',
     "job[0].name", "required key is missing"),
    ('[[job]]\nname = "a"\n[[job.target]]\nname = "a"\nurl = "file:///x"',
     "job[0].destination", "required key is missing"),
    ('[[job]]\nname = "a"\ndestination = "/d"', "job[0].target", "required key is missing"),
    ('[[job]]\nname = "a"\ndestination = "/d"\n[[job.target]]\nurl = "file:///x"',
     "job[0].target[0].name", "required key is missing"),
    ('[[job]]\nname = "a"\ndestination = "/d"\n[[job.target]]\nname = "a"',
     "job[0].target[0].url", "required key is missing"),
    # target counts
    ('[[job]]\nname = "a"\ndestination = "/d"\ntarget = []', "job[0].target",
     "expected 1 to 3 targets, found 0"),
    (MINIMAL + "".join(f'[[job.target]]\nname = "t{i}"\nurl = "file:///t{i}"\n'
                       for i in range(3)),
     "job[0].target", "expected 1 to 3 targets, found 4"),
    # duplicates
    (MINIMAL + MINIMAL, "job[1].name", "duplicate job name 'nightly' (also job[0])"),
    (MINIMAL + '[[job.target]]\nname = "other"\nurl = "file:///o"\n'
     '[[job.target]]\nname = "vault"\nurl = "file:///v"\n',
     "job[0].target[2].name",
     "duplicate target name 'vault' in job 'nightly' (also job[0].target[0])"),
    # URLs and sub-folders
    (target_text(url="/just/a/path"), "job[0].target[0].url", "no scheme"),
    (target_text(url="ftp://host:99999/x"), "job[0].target[0].url", "invalid port"),
    (target_text(url=""), "job[0].target[0].url", "empty string"),
    (target_text(url="file:///folder?x=1"), "job[0].target[0].url", "query string"),
    (target_text(url="file:///folder#frag"), "job[0].target[0].url", "fragment"),
    (target_text(url="file:///a%00b"), "job[0].target[0].url", "NUL (U+0000)"),
    (target_text(url="file:///a\\u0007b"), "job[0].target[0].url", "control characters"),
    (target_text('subfolder = "a/../../etc"'), "job[0].target[0].subfolder", "'..'"),
    # safety settings
    (target_text("mirror = true\nmax_delete = 101"), "job[0].target[0].max_delete",
     "a percentage from 0 to 100"),
    (target_text('mirror = true\nmax_delete = "half"'), "job[0].target[0].max_delete",
     "found 'half' (str)"),
    (target_text("mirror = true\nmax_delete = 0.5"), "job[0].target[0].max_delete",
     "found 0.5 (float)"),
    (MINIMAL.replace('destination = "/srv/images"',
                     'destination = "/srv/images"\nsettle = "soon"'),
     "job[0].settle", "expected a duration"),
    (MINIMAL.replace('destination = "/srv/images"', 'destination = "/srv/images"\nsettle = -1'),
     "job[0].settle", "found -1 (int)"),
    (target_text('subfolder = "a\\\\b"'), "job[0].target[0].subfolder", "backslash"),
])
def test_refusals(text: str, key: str, fragment: str, tmp_path: Path) -> None:
    error = refused(text, tmp_path)
    assert error.key == key
    assert fragment in error.detail
    assert f"{tmp_path / 'offsite.toml'}: {key}: " in str(error)


def test_refusal_in_second_job_and_target_names_its_index(tmp_path: Path) -> None:
    text = FULL.replace('url = "file:///mnt/usb/offsite"',
                        'url = "file:///mnt/usb/offsite"\nretries = "x"')
    assert refused(text, tmp_path).key == "job[1].target[0].retries"
    text = FULL.replace('url = "s3://bucket/folder"', 'url = "s3://bucket/folder"\nmirror = 1')
    assert refused(text, tmp_path).key == "job[0].target[1].mirror"


def test_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    error = refused('[[job]]\nname = "a"\ndestination = /srv\n', tmp_path)
    assert error.key == "(file)"
    assert "invalid TOML" in error.detail
    assert re.search(r"line 3, column \d+", error.detail)


def test_unknown_key_lists_what_is_allowed(tmp_path: Path) -> None:
    error = refused(target_text("bandwidth = 5"), tmp_path)
    assert error.key == "job[0].target[0].bandwidth"
    for allowed in ("name", "url", "priority", "retries", "bwlimit", "options", "subfolder"):
        assert allowed in error.detail


def test_options_may_hold_anything(tmp_path: Path) -> None:
    text = target_text('[job.target.options]\nanything = [1, "two", {three = 3}]\nx.y = true')
    options = load(text, tmp_path).jobs[0].targets[0].options
    assert options == {"anything": [1, "two", {"three": 3}], "x": {"y": True}}


@pytest.mark.parametrize(("scheme", "install"), [
    ("sftp", "install offsite-sftp"),
    ("webdavs", "install offsite-webdav"),
    ("gopher", "install a plugin for the 'gopher' scheme"),
])
def test_scheme_without_plugin(scheme: str, install: str, tmp_path: Path) -> None:
    error = refused(target_text(url=f"{scheme}://host/folder"), tmp_path, schemes={"file"})
    assert error.key == "job[0].target[0].url"
    assert f"'{scheme}://'" in error.detail
    assert install in error.detail


def test_schemes_not_checked_when_not_given(tmp_path: Path) -> None:
    assert load(target_text(url="gopher://host/x"), tmp_path).jobs[0].targets[0].scheme == "gopher"


@pytest.mark.parametrize("url", [
    "ftp://user:hunter2@host/x",
    "sftp://backup:hunter2@vault:22/srv",
    "//user:hunter2@host/x",  # no scheme: Endpoint's own message would quote the URL
    "s3://key:hunter2@[bad/x",  # urlsplit itself fails on this one
    "SMB://me:hunter2@host/share",
])
def test_password_in_url_is_refused_and_never_shown(url: str, tmp_path: Path) -> None:
    error = refused(target_text(url=url), tmp_path, schemes={"ftp"})
    assert error.key == "job[0].target[0].url"
    assert "offsite credentials set nightly.vault" in error.detail
    for text in (str(error), error.detail, repr(error), repr(error.args), str(error.fields)):
        assert "hunter2" not in text


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path / "missing.toml")
    error = caught.value
    assert (error.key, error.file) == ("(file)", str(tmp_path / "missing.toml"))
    assert "does not exist" in error.detail
    assert "create it" in str(error) and "--config" in str(error)

    with pytest.raises(ConfigError, match="cannot read") as caught:
        Config.load(tmp_path)  # a folder
    assert caught.value.key == "(file)" and "--config" in str(caught.value)


def test_file_without_read_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "offsite.toml"
    path.write_text(MINIMAL)

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)  # root could read a mode-0 file
    with pytest.raises(ConfigError, match="cannot read") as caught:
        Config.load(path)
    assert caught.value.key == "(file)"
    assert "Permission denied" in caught.value.detail
    assert "--config" in str(caught.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "offsite.toml"
    path.write_bytes(MINIMAL.replace("/srv/images", "/srv/\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match="UTF-8") as caught:
        Config.load(path)
    assert caught.value.key == "(file)"


# -- warnings --------------------------------------------------------------------


def test_mirror_with_filter_and_policy_keys_warns(tmp_path: Path) -> None:
    text = target_text('mirror = true\nsubfolder = "x"\ntypes = ["full"]')
    config = load(text, tmp_path)
    assert config.warnings == (
        "job 'nightly' target 'vault' (job[0].target[0]): mirror keeps an exact copy: "
        "types, subfolder are ignored",
    )
    target = config.jobs[0].targets[0]
    assert target.mirror is True and target.subfolder == "x"  # loaded as written


def test_mirror_warns_even_for_default_values_written_out(tmp_path: Path) -> None:
    config = load(target_text("mirror = true\nnew_sets_only = false"), tmp_path)
    assert len(config.warnings) == 1
    assert "new_sets_only is ignored" in config.warnings[0]


@pytest.mark.parametrize("extra", [
    "mirror = true",
    "mirror = true\nretries = 5\nbwlimit = 1000\npriority = 3",
    'mirror = false\ntypes = ["full"]\nsubfolder = "x"',
])
def test_no_warning(extra: str, tmp_path: Path) -> None:
    assert load(target_text(extra), tmp_path).warnings == ()


# -- where the file is -------------------------------------------------------------


def test_default_config_path_honours_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFSITE_CONFIG", str(tmp_path / "mine.toml"))
    assert default_config_path() == tmp_path / "mine.toml"


def test_default_config_path_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("OFFSITE_CONFIG", raising=False)
    expected = platformdirs.user_config_path("offsite") / "offsite.toml"
    assert default_config_path() == expected
    monkeypatch.setenv("OFFSITE_CONFIG", "")
    assert default_config_path() == expected


# -- property: unknown keys ----------------------------------------------------------

ALLOWED = {"name", "url", "priority", "retries", "mirror", "types", "new_images_only",
           "new_sets_only", "subfolder", "bwlimit", "max_delete", "options"}
SAFE_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
VALUES = st.one_of(st.integers(), st.booleans(), SAFE_TEXT,
                   st.lists(st.integers(), max_size=3))


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def key_path(name: str) -> str:
    bare = re.fullmatch(r"[A-Za-z0-9_-]+", name)
    return name if bare else json.dumps(name, ensure_ascii=False)


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extra=st.dictionaries(SAFE_TEXT.filter(lambda k: k not in ALLOWED), VALUES,
                             min_size=1, max_size=4),
       before=st.booleans())
def test_unknown_target_keys_are_always_refused(extra: dict[str, object], before: bool) -> None:
    lines = "".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n"
                    for k, v in extra.items())
    known = 'name = "vault"\nurl = "file:///mnt/offsite"\nretries = 2\n'
    text = ('[[job]]\nname = "nightly"\ndestination = "/srv/images"\n[[job.target]]\n'
            + (lines + known if before else known + lines))
    with pytest.raises(ConfigError) as caught:
        Config.from_text(text, Path("/etc/offsite/offsite.toml"))
    first = next(iter(extra))
    assert caught.value.key == f"job[0].target[0].{key_path(first)}"
    assert caught.value.file == "/etc/offsite/offsite.toml"
    assert "unknown key" in caught.value.detail


@pytest.mark.parametrize(("text", "value"), [("30", 30.0), ('"90s"', 90.0), ('"5m"', 300.0),
                                             ('"1.5 h"', 5400.0), ("0", 0.0)])
def test_settle(text: str, value: float, tmp_path: Path) -> None:
    config = load(MINIMAL.replace('destination = "/srv/images"',
                                  f'destination = "/srv/images"\nsettle = {text}'), tmp_path)
    assert config.jobs[0].settle == value
    assert load(MINIMAL, tmp_path).jobs[0].settle == 300.0


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("100", 100), ('"25%"', 25),
                                             ('"7 %"', 7)])
def test_max_delete(text: str, value: int, tmp_path: Path) -> None:
    config = load(target_text(f"mirror = true\nmax_delete = {text}"), tmp_path)
    assert config.jobs[0].targets[0].max_delete == value
    assert config.warnings == ()
    assert load(target_text("mirror = true"), tmp_path).jobs[0].targets[0].max_delete == 50
    plain = load(target_text("max_delete = 10"), tmp_path)
    assert "max_delete applies to mirror targets only" in plain.warnings[0]


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "offsite.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert Config.load(path).jobs[0].name == "nightly"
