"""Folders that overlap where that could lose data: refused at load, checked
again at run time, and guarded at every write and delete.

The property at the end builds random folder layouts (nesting, symlinks,
``..``) and proves that no configuration that loads can make offsite delete
or change a file under any destination.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from offsite.cli import cli
from offsite.config import Config
from offsite.engine import Engine
from offsite.errors import ConfigError
from offsite.journal import Journal


def job(name: str, destination: Path | str, *targets: str) -> str:
    body = "".join(textwrap.dedent(t) for t in targets)
    return f'[[job]]\nname = "{name}"\ndestination = "{destination}"\n{body}'


def target(name: str, url: str, extra: str = "") -> str:
    return f'[[job.target]]\nname = "{name}"\nurl = "{url}"\n{extra}\n'


def load(tmp_path: Path, *jobs: str) -> Config:
    path = tmp_path / "conf" / "offsite.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(jobs))
    return Config.load(path)


def refused(tmp_path: Path, *jobs: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, *jobs)
    assert caught.value.file == str(tmp_path / "conf" / "offsite.toml")
    return caught.value


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    folder = tmp_path / "x" / "parent" / "dest"
    folder.mkdir(parents=True)
    return folder


# -- a target and a destination ------------------------------------------------------


def test_the_reported_case_a_mirror_target_holding_the_destination(tmp_path: Path,
                                                                   dest: Path) -> None:
    error = refused(tmp_path, job("nightly", dest, target(
        "up", dest.parent.as_uri(), "mirror = true")))
    assert error.key == "job[0].target[0].url"
    assert "holds the destination of job 'nightly' (job[0].destination = " in error.detail
    assert str(dest) in error.detail and "outside every destination" in error.detail


@pytest.mark.parametrize("where", ["same", "inside", "above", "dotdot", "symlink",
                                   "symlink-above", "localhost"])
def test_a_target_never_touches_a_destination(tmp_path: Path, dest: Path, where: str) -> None:
    link = tmp_path / "link"
    url = {
        "same": dest.as_uri(),
        "inside": (dest / "offsite").as_uri(),
        "above": tmp_path.as_uri(),
        "dotdot": f"file://{dest.parent}/other/../dest/sub",
        "symlink": link.as_uri(),
        "symlink-above": (link / "deeper").as_uri(),
        "localhost": f"file://localhost{dest}",
    }[where]
    link.symlink_to(dest)
    error = refused(tmp_path, job("nightly", dest, target("t", url)))  # mirror or not
    assert error.key == "job[0].target[0].url"


def test_another_jobs_destination_and_a_tilde(tmp_path: Path, dest: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "x"))
    error = refused(tmp_path,
                    job("a", tmp_path / "elsewhere", target("t", (tmp_path / "ta").as_uri())),
                    job("b", "~/parent/dest", target("t", (tmp_path / "tb").as_uri())),
                    job("c", tmp_path / "third", target("t", (dest / "in").as_uri())))
    assert error.key == "job[2].target[0].url"
    assert "the destination of job 'b' (job[1].destination = " in error.detail


def test_a_relative_destination_is_resolved_from_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "conf" / "images").mkdir(parents=True)
    error = refused(tmp_path, job("a", "images", target(
        "t", (tmp_path / "conf").as_uri(), "mirror = true")))
    assert "holds the destination" in error.detail


def test_a_loopback_server_is_this_machine(tmp_path: Path, dest: Path) -> None:
    for url in (f"sftp://backup@localhost{dest}", f"sftp://127.0.0.1:2222{dest.parent}",
                f"ftp://[::1]{dest}/sub"):
        assert refused(tmp_path, job("a", dest, target("t", url))).key == "job[0].target[0].url"
    # A server elsewhere, or a path under its user's home, is another machine's folder.
    load(tmp_path, job("a", dest, target("t", f"sftp://backup@vault{dest}")))
    load(tmp_path, job("a", dest, target("t", f"sftp://backup@localhost/~{dest}")))


def test_separate_folders_load(tmp_path: Path, dest: Path) -> None:
    sibling = dest.parent / "dest-copy"  # a common prefix is not nesting
    config = load(tmp_path, job("a", dest, target("m", sibling.as_uri(), "mirror = true")))
    assert config.warnings == ()


# -- two targets -----------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b", "mirror", "verdict"), [
    ("file:///srv/t", "file:///srv/t", True, "refused"),
    ("file:///srv/t", "file:///srv/t/sub", True, "refused"),
    ("file:///srv/t/sub", "file:///srv/t", True, "refused"),
    ("file:///srv/t", "file:///srv/t", False, "warned"),
    ("file:///srv/t", "file:///srv/t/sub", False, "fine"),
    ("file:///srv/t", "file:///srv/u", True, "fine"),
    ("sftp://backup@vault/srv/t", "sftp://other@VAULT:22/srv/t/x", True, "refused"),
    ("sftp://backup@vault/srv/t", "sftp://backup@vault:2222/srv/t", True, "fine"),
    ("sftp://backup@vault/~/t", "sftp://other@vault/~/t", True, "fine"),
    ("s3://bucket/a", "s3://bucket/a/b", True, "refused"),
    ("s3://bucket/a", "s3://bucket/ab", True, "fine"),
    ("s3://bucket/a", "s3://bucket2/a", True, "fine"),
    ("ftp://nas/backup", "ftps://nas:21/backup", True, "refused"),
    ("smb://nas/Share/Backup", "smb://NAS/share/backup/x", True, "refused"),
    ("webdav://nas/b", "webdavs://nas/b", True, "fine"),
])
def test_targets_sharing_a_folder(tmp_path: Path, a: str, b: str, mirror: bool,
                                  verdict: str) -> None:
    jobs = (job("one", tmp_path / "d1", target("a", a, f"mirror = {str(mirror).lower()}")),
            job("two", tmp_path / "d2", target("b", b)))
    if verdict == "refused":
        error = refused(tmp_path, *jobs)
        assert error.key == "job[1].target[0].url"
        assert "target 'a' of job 'one' mirrors" in error.detail
        assert "job[0].target[0].url" in error.detail
        return
    config = load(tmp_path, *jobs)
    assert bool(config.warnings) == (verdict == "warned")


def test_s3_buckets_of_two_stores_are_two_folders(tmp_path: Path) -> None:
    store = '[job.target.options]\nendpoint_url = "{}"\n'
    load(tmp_path, job("a", tmp_path / "d", target("x", "s3://b/f", "mirror = true"),
                       target("y", "s3://b/f", store.format("https://minio.lan:9000"))))
    error = refused(tmp_path, job("a", tmp_path / "d", target(
        "x", "s3://b/f", "mirror = true\n" + store.format("https://MINIO.lan:9000/")),
        target("y", "s3://b/f", store.format("https://minio.lan:9000"))))
    assert error.key == "job[0].target[1].url"


# -- at run time -----------------------------------------------------------------------


def site(tmp_path: Path, extra: str = "") -> tuple[Path, Path, Path]:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.txt").write_text("keep me")
    (dest / ".a.ofimap").write_text("hidden")
    t = tmp_path / "t"
    config = tmp_path / "conf" / "offsite.toml"
    config.parent.mkdir()
    config.write_text(job("j", dest, target("t", t.as_uri(), extra)))
    return config, dest, t


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_a_symlink_swapped_in_after_loading_is_refused_at_run_time(tmp_path: Path) -> None:
    config, dest, t = site(tmp_path, "mirror = true")
    engine = Engine(Config.load(config), Journal(tmp_path / "conf" / "journal.sqlite"))
    t.symlink_to(dest)  # the target folder now leads into the destination
    before = snapshot(dest)
    (result,) = engine.run()
    assert not result.ok and result.setup_error
    assert "holds the destination" in (result.error or "") or "is the destination" in (
        result.error or "")
    assert snapshot(dest) == before


def test_a_symlink_inside_the_target_never_leads_a_write_into_a_destination(
        tmp_path: Path) -> None:
    config, dest, t = site(tmp_path, 'subfolder = "sub"')
    t.mkdir()
    (t / "sub").symlink_to(dest)
    before = snapshot(dest)
    result = CliRunner().invoke(cli, ["--config", str(config), "run"])
    assert result.exit_code == 2, result.stderr
    assert "refused to replicate into" in result.stderr
    assert "lies under a destination" in result.stderr
    assert snapshot(dest) == before


# -- the property ----------------------------------------------------------------------

# Folders of a small tree, some reached through a symlink or "..".
PLACES = ["a", "a/b", "a/b/c", "d", "d/e", "la", "la/b", "la/b/c", "d/../a/b", "a/b/../../d"]
TARGETS = [*PLACES, "d/e/f", "la/x", "a/b/c/deep"]


def _layout(root: Path) -> None:
    for folder in ("a/b/c", "d/e"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / "la").symlink_to(root / "a")


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dests=st.lists(st.sampled_from(PLACES), min_size=1, max_size=2),
       targets=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(TARGETS), st.booleans()),
                        min_size=1, max_size=3),
       delete=st.booleans())
def test_no_configuration_that_loads_changes_a_destination(
        dests: list[str], targets: list[tuple[int, str, bool]], delete: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _layout(root)
        jobs = []
        for index, place in enumerate(dests):
            mine = [target(f"t{n}", f"file://{root}/{url}", f"mirror = {str(m).lower()}")
                    for n, (owner, url, m) in enumerate(targets) if owner % len(dests) == index]
            if mine:
                jobs.append(job(f"j{index}", f"{root}/{place}", *mine))
        conf = root / "conf"
        conf.mkdir()
        (conf / "offsite.toml").write_text("".join(jobs))
        try:
            config = Config.load(conf / "offsite.toml")
        except ConfigError:
            event("refused")  # nothing ran
            return
        event("loaded and ran")
        folders = sorted({os.path.realpath(j.destination) for j in config.jobs})
        for n, folder in enumerate(folders):
            (Path(folder) / f"image-{n}.bin").write_bytes(os.urandom(64))
            (Path(folder) / f".hidden-{n}").write_text("offsite's own")
        before = {f: snapshot(Path(f)) for f in folders}
        with Journal(conf / "journal.sqlite") as journal:
            Engine(config, journal).run()
            if delete:  # the destinations lose a file: mirrors follow
                for n, folder in enumerate(folders):
                    os.remove(Path(folder) / f"image-{n}.bin")
                    del before[folder][f"image-{n}.bin"]
                Engine(config, journal).run()
        after = {f: snapshot(Path(f)) for f in folders}
        assert after == before, "a destination was changed"
