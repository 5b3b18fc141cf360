"""The job configuration: ``offsite.toml`` loaded into frozen, validated values.

One TOML file holds every job (DESIGN §7)::

    [[job]]
    name = "nightly"
    destination = "/srv/backup/images"

      [[job.target]]
      name = "vault"
      url = "sftp://backup@vault.example.com:22/srv/offsite"
      bwlimit = "20M"
      [job.target.options]
      known_hosts = "~/.ssh/known_hosts"

:meth:`Config.load` reads it into :class:`Config`, :class:`Job` and
:class:`TargetConfig`. Everything is checked at load time, so nothing runs on
a bad configuration: an unknown key, a wrong type (``true`` is not an
integer, ``"yes"`` is not a boolean), a name that is not ``[A-Za-z0-9_-]``,
a duplicate name, no job, no target or more than three, a password in a URL,
a sub-folder that climbs out with ``..``, (when the caller passes the
installed ``schemes``) a URL no plugin handles, and folders that overlap
where that could lose data (:mod:`offsite.overlap`: a target in, at or
above a destination; a mirror target sharing a folder with another target). Each refusal is a
:class:`~offsite.errors.ConfigError` naming the file, the key path
(``job[0].target[1].retries``) and what was expected and found.

Some combinations are not wrong but pointless; they load, with a line in
:attr:`Config.warnings` (``mirror = true`` ignores the target filter and the
policies).

The file lives in the *config folder* (:attr:`Config.folder`), which also
holds the journal and the credential key; :func:`default_config_path` says
where it is when ``--config`` is not given.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import urllib.parse
from collections.abc import Collection, Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import attrs
import platformdirs

from offsite import overlap, paths
from offsite.errors import ConfigError
from offsite.transport import Endpoint

#: The image types a target's ``types`` filter may list; all of them by default.
DEFAULT_TYPES: tuple[str, ...] = ("full", "incremental", "other")
#: The environment variable that names the configuration file.
CONFIG_ENV = "OFFSITE_CONFIG"
#: The file name in the platform's config folder.
CONFIG_NAME = "offsite.toml"
#: How many targets one job may have.
MAX_TARGETS = 3
#: The highest ``retries`` value accepted.
MAX_RETRIES = 100
#: Job and target names: no dots, because the CLI addresses a target as JOB.TARGET.
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")

_TOP_KEYS = ("job",)
_JOB_KEYS = ("name", "destination", "settle", "target")
_TARGET_KEYS = (
    "name", "url", "priority", "retries", "mirror", "types", "new_images_only",
    "new_sets_only", "subfolder", "bwlimit", "max_delete", "options",
)
#: What ``mirror = true`` makes meaningless, in the order warnings list them.
_MIRROR_IGNORES = ("types", "new_images_only", "new_sets_only", "subfolder")
#: The default of ``max_delete``: a mirror run deletes at most half of what it placed.
DEFAULT_MAX_DELETE = 50
#: The default of ``settle``, in seconds: an image that still looks unfinished
#: after this long without a change is reported as damaged.
DEFAULT_SETTLE = 300.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|min|h)?\Z", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}
_PERCENT = re.compile(r"(\d{1,3})\s*%\Z")

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_BWLIMIT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmg])(?:ib|i)?|b)?\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_BWLIMIT_EXPECTED = (
    "expected a rate in bytes per second: a non-negative integer, or a string such as "
    "\"512K\", \"20M\", \"1G\" (powers of 1024), or \"off\" / 0 for unlimited"
)

_T = TypeVar("_T")


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy, so a frozen value cannot be changed through its mapping."""
    return MappingProxyType(dict(value or {}))


def _type_name(value: object) -> str:
    """The TOML-ish name of a value's type, for "found …" messages."""
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _found(value: object) -> str:
    """``'three' (str)``: a value and its type, shortened if long."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({_type_name(value)})"


def _key(name: str) -> str:
    """A key as it appears in a key path: bare if TOML allows it, else quoted."""
    return name if _BARE_KEY.match(name) else json.dumps(name, ensure_ascii=False)


def _join(where: str, name: str) -> str:
    """The key path of ``name`` inside the table at ``where`` ('' = top level)."""
    return f"{where}.{_key(name)}" if where else _key(name)


def _url_password(url: str) -> str | None:
    """The password in ``url``'s user info, found without trusting urlsplit
    (whose own errors may quote the whole network location)."""
    rest = url.split("://", 1)[1] if "://" in url else url.removeprefix("//")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo, at, _host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.partition(":")[2]


def default_config_path() -> Path:
    """Where the configuration is when ``--config`` is not given.

    ``$OFFSITE_CONFIG`` when it is set (and not empty), else ``offsite.toml``
    in the platform's user config folder, e.g. ``~/.config/offsite/offsite.toml``.
    """
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    return platformdirs.user_config_path("offsite") / CONFIG_NAME


def parse_bwlimit(value: object, key: str, file: Path) -> int | None:
    """Turn a ``bwlimit`` value into bytes per second, ``None`` for unlimited.

    An integer is bytes per second; a string may carry a ``K``, ``M`` or ``G``
    suffix in powers of 1024, as rclone has it (``"20M"`` is 20 971 520), also
    written ``"20Mi"`` or ``"20MiB"``, in any case, and may have a fraction
    (``"1.5M"``). ``0``, ``"0"`` and ``"off"`` mean unlimited.

    :param key: the key path, for the error.
    :param file: the configuration file, for the error.
    :raises ConfigError: a negative number, a boolean, a float, or a string
        that is not a rate.
    """

    def refuse(extra: str = "") -> ConfigError:
        return ConfigError(f"{_BWLIMIT_EXPECTED}; found {_found(value)}{extra}",
                           file=file, key=key)

    if isinstance(value, bool):
        raise refuse()
    if isinstance(value, int):
        if value < 0:
            raise refuse()
        return value or None
    if not isinstance(value, str):
        raise refuse()
    text = value.strip()
    if text.lower() == "off":
        return None
    match = _BWLIMIT.match(text)
    if match is None:
        raise refuse()
    number = Decimal(match.group(1))
    rate = int(number * _UNITS[(match.group(2) or "").lower()])
    if rate == 0 and number != 0:
        raise refuse(", which is less than 1 byte per second")
    return rate or None


@attrs.frozen
class TargetConfig:
    """One ``[[job.target]]``: where a job's images go, and which of them.

    :ivar name: unique within the job; ``[A-Za-z0-9_-]``, 1 to 64 characters.
    :ivar url: the URL as written in the file (it never holds a password).
    :ivar endpoint: the parsed URL, named ``JOB.TARGET``, with :attr:`options`
        and no credentials (the engine adds those from the credential store).
    :ivar priority: lower runs first; equal priorities run in parallel.
    :ivar retries: attempts after the first, 0 to 100.
    :ivar mirror: keep the target an exact copy of the destination (the
        filter and the policies below are then ignored).
    :ivar types: the image types to replicate, in :data:`DEFAULT_TYPES` order.
    :ivar new_images_only: only images created after the target was added.
    :ivar new_sets_only: only generation sets started after the target was added.
    :ivar subfolder: a normalised remote sub-folder to put everything under
        (``""`` for none).
    :ivar bwlimit: bytes per second, ``None`` for unlimited.
    :ivar max_delete: mirror: the most one run may delete, in percent of the
        files offsite placed at the target (100: no limit).
    :ivar options: the ``[job.target.options]`` table, for the plugin (read-only).
    """

    name: str
    url: str
    endpoint: Endpoint
    priority: int = 1
    retries: int = 3
    mirror: bool = False
    types: tuple[str, ...] = DEFAULT_TYPES
    new_images_only: bool = False
    new_sets_only: bool = False
    subfolder: str = ""
    bwlimit: int | None = None
    max_delete: int = DEFAULT_MAX_DELETE
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    @property
    def scheme(self) -> str:
        """The URL scheme (lower case), which picks the plugin."""
        return self.endpoint.scheme


@attrs.frozen
class Job:
    """One ``[[job]]``: a destination folder and the targets it replicates to.

    :ivar name: unique in the file; ``[A-Za-z0-9_-]``, 1 to 64 characters.
    :ivar destination: the local folder the backup software writes to,
        absolute (a relative path in the file is relative to the file's folder).
    :ivar targets: one to three, in file order.
    :ivar settle: seconds an image that looks unfinished (no valid footer)
        may stay unchanged before it is reported as damaged.
    """

    name: str
    destination: Path
    targets: tuple[TargetConfig, ...]
    settle: float = DEFAULT_SETTLE
    # Where the job came from, only for the messages of target(): not part of its value.
    _index: int = attrs.field(default=0, kw_only=True, eq=False, repr=False)
    _file: Path | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)

    def target(self, name: str) -> TargetConfig:
        """The target called ``name``.

        :raises ConfigError: there is none; the message lists the job's targets.
        """
        for target in self.targets:
            if target.name == name:
                return target
        known = ", ".join(t.name for t in self.targets)
        raise ConfigError(f"job '{self.name}' has no target {name!r}; its targets are: {known}",
                          file=self._file or "?", key=f"job[{self._index}].target")

    def require_destination(self) -> None:
        """Refuse a destination that is not a folder, naming the file and key.

        Checked when a command scans the destination (not at load: a
        removable disk may be mounted later), so the message must say which
        ``destination`` key to correct.

        :raises ConfigError: the destination does not exist or is not a folder.
        """
        if self.destination.is_dir():
            return
        what = "is not a folder" if self.destination.exists() else "does not exist"
        raise ConfigError(
            f"the destination folder {self.destination} of job '{self.name}' {what}",
            fix="create it (or mount the disk that holds it), or correct the destination key",
            file=self._file or "?", key=f"job[{self._index}].destination")


@attrs.frozen
class Config:
    """The whole configuration file.

    :ivar path: the (absolute) file it was loaded from.
    :ivar jobs: one or more, in file order.
    :ivar warnings: things that load but are probably not what was meant,
        one sentence each, for the CLI to show.
    """

    path: Path
    jobs: tuple[Job, ...]
    warnings: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        """The config folder: ``journal.sqlite``, ``key`` and the credentials live here."""
        return self.path.parent

    def job(self, name: str) -> Job:
        """The job called ``name``.

        :raises ConfigError: there is none; the message lists the jobs.
        """
        for job in self.jobs:
            if job.name == name:
                return job
        known = ", ".join(j.name for j in self.jobs)
        raise ConfigError(f"no job named {name!r}; the jobs are: {known}",
                          file=self.path, key="job")

    @classmethod
    def load(cls, path: Path, *, schemes: Collection[str] | None = None) -> Config:
        """Read and validate the configuration file at ``path``.

        :param schemes: the URL schemes installed plugins handle; when given,
            a target URL with any other scheme is refused (with what to install).
        :raises ConfigError: the file cannot be read, is not UTF-8 TOML, or
            breaks a rule of the format.
        """
        path = Path(path).absolute()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(
                "the configuration file does not exist", file=path, key="(file)",
                fix="create it (see the example in the documentation), or pass "
                    f"--config FILE or set {CONFIG_ENV} to use another one",
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"cannot read the configuration file: {exc.strerror or exc}",
                file=path, key="(file)",
                fix=f"make it readable by this user, or pass --config FILE or set {CONFIG_ENV}",
            ) from None
        # Windows editors (Notepad) start UTF-8 files with a byte-order mark,
        # which TOML parsers take for a stray character at line 1, column 1.
        data = data.removeprefix(b"\xef\xbb\xbf")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"a TOML file must be UTF-8 text: {exc}",
                              file=path, key="(file)") from None
        return cls.from_text(text, path, schemes=schemes)

    @classmethod
    def from_text(cls, text: str, path: Path, *,
                  schemes: Collection[str] | None = None) -> Config:
        """Validate configuration ``text`` as if read from ``path``.

        ``path`` names the file in messages and anchors relative destinations.

        :raises ConfigError: as :meth:`load`.
        """
        return _Loader(Path(path).absolute(), schemes).config(text)


class _Loader:
    """Checks one parsed file, key by key; each refusal names its key path."""

    def __init__(self, path: Path, schemes: Collection[str] | None) -> None:
        self.path = path
        self.schemes = None if schemes is None else {s.lower() for s in schemes}
        self.warnings: list[str] = []

    def error(self, key: str, detail: str) -> ConfigError:
        return ConfigError(detail, file=self.path, key=key)

    # -- generic checks ---------------------------------------------------------

    def table(self, value: object, key: str, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table ({what}), found {_found(value)}")
        return value

    def known_keys(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                # A near miss (`retry`, `destnation`) is the usual cause: name the key meant.
                close = difflib.get_close_matches(name, allowed, n=1)
                raise self.error(_join(where, name),
                                 f"unknown key {name!r}"
                                 + (f" (did you mean {close[0]!r}?)" if close else "")
                                 + f"; the keys allowed here are: {', '.join(allowed)}")

    def required(self, table: Mapping[str, Any], where: str, name: str, example: str) -> Any:
        if name not in table:
            raise self.error(_join(where, name),
                             f"required key is missing (e.g. {name} = {example})")
        return table[name]

    def typed(self, value: object, key: str, kind: type[_T], expected: str) -> _T:
        # bool is an int in Python, but never in a configuration file.
        if isinstance(value, bool) and kind is not bool:
            raise self.error(key, f"expected {expected}, found {_found(value)}")
        if not isinstance(value, kind):
            raise self.error(key, f"expected {expected}, found {_found(value)}")
        return value

    def integer(self, value: object, key: str, low: int, high: int | None) -> int:
        expected = (f"an integer from {low} to {high}" if high is not None
                    else f"an integer of at least {low}")
        number = self.typed(value, key, int, expected)
        if number < low or (high is not None and number > high):
            raise self.error(key, f"expected {expected}, found {_found(value)}")
        return number

    def name(self, value: object, key: str) -> str:
        expected = "a name of 1 to 64 letters, digits, '_' or '-' (no dots)"
        text = self.typed(value, key, str, expected)
        if not NAME.match(text):
            raise self.error(key, f"expected {expected}, found {_found(value)}")
        return text

    # -- the format ---------------------------------------------------------------

    def config(self, text: str) -> Config:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise self.error("(file)", f"invalid TOML: {exc}") from None
        self.known_keys(data, "", _TOP_KEYS)
        if "job" not in data:
            raise self.error("job", "expected at least one job ([[job]] with name, destination "
                                    "and [[job.target]]), found none")
        entries = data["job"]
        if isinstance(entries, dict):
            raise self.error("job", "expected an array of tables ([[job]]), found a table "
                                    "([job]); write [[job]]")
        entries = self.typed(entries, "job", list, "an array of tables ([[job]])")
        if not entries:
            raise self.error("job", "expected at least one job ([[job]]), found none")
        jobs: list[Job] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            job = self.job(entry, index)
            if job.name in seen:
                raise self.error(f"job[{index}].name",
                                 f"duplicate job name {job.name!r} (also job[{seen[job.name]}]); "
                                 "job names must be unique")
            seen[job.name] = index
            jobs.append(job)
        refused, warned = overlap.problems(jobs)
        if refused:
            raise self.error(refused[0].key, refused[0].message)
        self.warnings += warned
        return Config(path=self.path, jobs=tuple(jobs), warnings=tuple(self.warnings))

    def job(self, entry: object, index: int) -> Job:
        where = f"job[{index}]"
        table = self.table(entry, where, "[[job]] with name, destination and [[job.target]]")
        self.known_keys(table, where, _JOB_KEYS)
        name = self.name(self.required(table, where, "name", '"nightly"'), f"{where}.name")
        destination = self.destination(
            self.required(table, where, "destination", '"/srv/backup/images"'),
            f"{where}.destination")
        settle = (self.duration(table["settle"], f"{where}.settle") if "settle" in table
                  else DEFAULT_SETTLE)
        key = f"{where}.target"
        entries = self.required(table, where, "target", "[[job.target]] tables")
        if isinstance(entries, dict):
            raise self.error(key, "expected an array of tables ([[job.target]]), found a table "
                                  "([job.target]); write [[job.target]]")
        entries = self.typed(entries, key, list, "an array of tables ([[job.target]])")
        if not 1 <= len(entries) <= MAX_TARGETS:
            raise self.error(key, f"expected 1 to {MAX_TARGETS} targets, found {len(entries)}")
        targets: list[TargetConfig] = []
        seen: dict[str, int] = {}
        for number, item in enumerate(entries):
            target = self.target(item, f"{key}[{number}]", name)
            if target.name in seen:
                raise self.error(f"{key}[{number}].name",
                                 f"duplicate target name {target.name!r} in job {name!r} "
                                 f"(also {key}[{seen[target.name]}]); target names must be "
                                 "unique within a job")
            seen[target.name] = number
            targets.append(target)
        return Job(name=name, destination=destination, targets=tuple(targets), settle=settle,
                   index=index, file=self.path)

    def duration(self, value: object, key: str) -> float:
        expected = ("a duration: seconds as a non-negative number, or a string such as "
                    "\"90s\", \"5m\", \"1h\"")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < 0 or value != value or value == float("inf"):
                raise self.error(key, f"expected {expected}, found {_found(value)}")
            return float(value)
        match = _DURATION.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            raise self.error(key, f"expected {expected}, found {_found(value)}")
        return float(match.group(1)) * _DURATION_UNITS[(match.group(2) or "").lower()]

    def percent(self, value: object, key: str) -> int:
        expected = "a percentage from 0 to 100: an integer, or a string such as \"50%\""
        if isinstance(value, str) and _PERCENT.match(value.strip()):
            value = int(value.strip().rstrip("%").strip())
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
            raise self.error(key, f"expected {expected}, found {_found(value)}")
        return value

    def destination(self, value: object, key: str) -> Path:
        text = self.typed(value, key, str, "a local folder path")
        if not text.strip():
            raise self.error(key, "expected a local folder path, found an empty string")
        if "\x00" in text:
            raise self.error(key, "expected a local folder path, found one with a NUL character")
        try:
            folder = Path(text).expanduser()
        except RuntimeError as exc:  # "~someone" without a home
            raise self.error(key, f"cannot expand {text!r}: {exc}") from None
        return folder if folder.is_absolute() else self.path.parent / folder

    def target(self, entry: object, where: str, job: str) -> TargetConfig:
        table = self.table(entry, where, "[[job.target]] with name and url")
        self.known_keys(table, where, _TARGET_KEYS)
        name = self.name(self.required(table, where, "name", '"vault"'), f"{where}.name")
        url_value = self.required(table, where, "url", '"sftp://user@host/folder"')
        url = self.typed(url_value, f"{where}.url", str, "a URL such as sftp://user@host/folder")
        options = self.table(table.get("options", {}), f"{where}.options",
                             "[job.target.options], protocol specifics for the plugin")
        endpoint = self.endpoint(url, f"{where}.url", f"{job}.{name}", options)
        values: dict[str, Any] = {}
        if "priority" in table:
            values["priority"] = self.integer(table["priority"], f"{where}.priority", 0, None)
        if "retries" in table:
            values["retries"] = self.integer(table["retries"], f"{where}.retries",
                                             0, MAX_RETRIES)
        for flag in ("mirror", "new_images_only", "new_sets_only"):
            if flag in table:
                values[flag] = self.typed(table[flag], f"{where}.{flag}", bool,
                                          "a boolean (true or false, not in quotes)")
        if "types" in table:
            values["types"] = self.types(table["types"], f"{where}.types")
        if "subfolder" in table:
            values["subfolder"] = self.subfolder(table["subfolder"], f"{where}.subfolder")
        if "bwlimit" in table:
            values["bwlimit"] = parse_bwlimit(table["bwlimit"], f"{where}.bwlimit", self.path)
        if "max_delete" in table:
            values["max_delete"] = self.percent(table["max_delete"], f"{where}.max_delete")
            if not values.get("mirror"):
                self.warnings.append(
                    f"job '{job}' target '{name}' ({where}): max_delete applies to mirror "
                    "targets only; this target never deletes")
        if values.get("mirror"):
            ignored = [k for k in _MIRROR_IGNORES if k in table]
            if ignored:
                self.warnings.append(
                    f"job '{job}' target '{name}' ({where}): mirror keeps an exact copy: "
                    f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored")
        return TargetConfig(name=name, url=url, endpoint=endpoint, options=options, **values)

    def endpoint(self, url: str, key: str, label: str, options: Mapping[str, Any]) -> Endpoint:
        password = _url_password(url)
        try:
            has_password = urllib.parse.urlsplit(url).password is not None
        except ValueError:
            has_password = False
        if has_password or password:
            # Never echo the URL: it holds the secret.
            raise self.error(key, "a target URL must not contain a password; remove it from "
                                  f"the URL and store it with: offsite credentials set {label}")
        if not url.strip():
            raise self.error(key, "expected a URL such as sftp://user@host/folder, "
                                  "found an empty string")
        try:
            endpoint = Endpoint.from_url(url, name=label, options=options)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if self.schemes is not None and endpoint.scheme not in self.schemes:
            from offsite.plugins import OFFICIAL  # late: plugins pulls in pluggy and stevedore

            scheme = endpoint.scheme
            install = OFFICIAL.get(scheme, f"a plugin for the '{scheme}' scheme")
            # `sfpt://` is more often a typo than a protocol nobody has a plugin for.
            known = sorted(self.schemes | set(OFFICIAL))
            close = [] if scheme in OFFICIAL else difflib.get_close_matches(scheme, known, n=1)
            raise self.error(key, f"no installed plugin handles '{scheme}://' URLs; "
                                  + (f"did you mean '{close[0]}://'? Else " if close else "")
                                  + f"install {install}")
        return endpoint

    def types(self, value: object, key: str) -> tuple[str, ...]:
        expected = f"a non-empty array of distinct values from {list(DEFAULT_TYPES)}"
        items = self.typed(value, key, list, expected)
        if not items:
            raise self.error(key, f"expected {expected}, found an empty array")
        for item in items:
            if item not in DEFAULT_TYPES:  # also refuses non-strings
                raise self.error(key, f"expected {expected}, found {_found(item)} in it")
        for item in items:
            if items.count(item) > 1:
                raise self.error(key, f"expected {expected}, found {item!r} more than once")
        return tuple(t for t in DEFAULT_TYPES if t in items)

    def subfolder(self, value: object, key: str) -> str:
        text = self.typed(value, key, str, "a remote sub-folder path such as \"offsite/nightly\"")
        try:
            return paths.normalise(text)
        except ValueError as exc:
            raise self.error(key, f"expected a sub-folder inside the target folder: {exc}") \
                from None


__all__ = [
    "CONFIG_ENV",
    "DEFAULT_TYPES",
    "Config",
    "Job",
    "TargetConfig",
    "default_config_path",
    "parse_bwlimit",
]
