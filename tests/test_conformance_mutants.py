"""The conformance suite can fail: the file:// plugin, broken on purpose in
each way that loses data or misleads the engine, must fail it.

Each mutant is a small subclass of offsite-local's transport, installed as a
plugin of its own (scheme ``mutant``); the suite runs against it in a pytest
of its own (pytester), and the test that guards the broken contract point
must fail. The unbroken plugin, run the same way, passes: the harness is sound.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

pytest_plugins = ["pytester"]

MakeDist = Callable[..., str]

SUITE = '''
import subprocess
from pathlib import Path

import pytest

from offsite.testing import conformance
from offsite.testing.sources import random_bytes
from offsite.transport import BytesSource, Endpoint


def read_only(provoke):
    folder = Path(provoke.endpoint.path, "locked")
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        folder.chmod(0o555)
    try:
        provoke.session.put("locked/x.ofi", BytesSource(b"x"))
    finally:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        folder.chmod(0o755)


class MutantFixtures(conformance.TransportFixtures):
    @pytest.fixture
    def endpoint(self, tmp_path):
        return Endpoint.from_url("mutant://" + str(tmp_path / "t"), name="mutant")

    @pytest.fixture
    def broken_endpoint(self, tmp_path):
        (tmp_path / "a-file").write_bytes(b"x")
        return Endpoint.from_url("mutant://" + str(tmp_path / "a-file"), name="b"), "folder"

    @pytest.fixture
    def wrong_credentials(self):
        return "no credentials"

    @pytest.fixture
    def faults(self):
        return {"permission": read_only, "full": "not here", "transient": "not here"}

    @pytest.fixture
    def symlink(self, endpoint):
        def make(link, to):
            root = Path(endpoint.path)
            (root / link).parent.mkdir(parents=True, exist_ok=True)
            (root / link).symlink_to(root / to)
        return make


class TestMutant(conformance.AllTests, MutantFixtures):
    pass
'''

HEADER = '''
import os, shutil, time
from offsite import hookimpl, paths
from offsite.errors import PermissionDenied, StorageFull, Transient
from offsite.transport import RemoteFile
from offsite_local import LocalTransport
'''

#: name -> (the mutant's class body, the tests that must fail: a -k expression)
MUTANTS = {
    "resumes from the token's offset, not what the target holds": ('''
    @hookimpl
    def put(self, conn, path, transfer):
        token = transfer.resume or {}
        transfer.resume_offset = lambda partial, held: (
            int(token.get("offset", 0)) if token.get("partial") == partial else 0)
        return super().put(conn, path, transfer)
''', "test_resume_trusts_only_what_the_target_holds and shorten"),
    "saves its token only when the upload fails": ('''
    @hookimpl
    def put(self, conn, path, transfer):
        real = transfer.save_token
        transfer.save_token = lambda token: None
        try:
            return super().put(conn, path, transfer)
        except BaseException:
            real({"partial": paths.partial_path(path), "offset": transfer.done})
            raise
''', "test_token_is_saved_before_the_first_byte"),
    "calls permission denied transient": ('''
    @hookimpl
    def translate_error(self, exc):
        error = super().translate_error(exc)
        if isinstance(error, (PermissionDenied, StorageFull)):
            return Transient(str(exc))
        return error
''', "test_faults_are_classified and permission"),
    "declares no options": ('''
    options = None
''', "test_options_are_declared or test_an_unknown_option_is_refused"),
    "fails a read past the end": ('''
    @hookimpl
    def get(self, conn, path, offset):
        if offset > os.stat(conn.local(path)).st_size:
            raise OSError(22, "Invalid argument", path)
        return super().get(conn, path, offset)
''', "test_get_from_offset"),
    "deletes a folder with what is in it": ('''
    @hookimpl
    def delete(self, conn, path):
        target = conn.local(path)
        shutil.rmtree(target) if target.is_dir() else os.remove(target)
        return True
''', "test_delete_of_a_folder_raises_not_found"),
    "reports the local clock as the placed file's mtime": ('''
    @hookimpl
    def put(self, conn, path, transfer):
        placed = super().put(conn, path, transfer)
        return RemoteFile(placed.path, placed.size, time.time() + 30)
''', "test_put_reports_the_checksum_list_shows"),
    "deletes what a symlink points to": ('''
    @hookimpl
    def delete(self, conn, path):
        os.remove(os.path.realpath(conn.local(path)))
        return True
''', "test_symlinks_in_list_and_delete"),
    "fails the listing of a missing folder": ('''
    @hookimpl
    def list(self, conn, folder):
        if not conn.local(folder).is_dir():
            raise FileNotFoundError(2, "No such file or directory", folder)
        return super().list(conn, folder)
''', "test_list_missing_folder_is_empty"),
}


def _install(make_dist: MakeDist, body: str) -> None:
    source = HEADER + "\n\nclass Mutant(LocalTransport):\n" + (
        textwrap.indent(textwrap.dedent(body), "    ") if body.strip() else "    pass\n")
    make_dist("offsite-mutant", source + "\n\nplugin = Mutant()\n",
              schemes={"mutant": "plugin"})


def test_the_unbroken_plugin_passes(pytester: pytest.Pytester, make_dist: MakeDist) -> None:
    _install(make_dist, "")
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout
    assert outcomes["passed"] > 40


@pytest.mark.parametrize("broken", list(MUTANTS))
def test_a_broken_plugin_fails_the_suite(pytester: pytest.Pytester, make_dist: MakeDist,
                                         broken: str) -> None:
    body, guard = MUTANTS[broken]
    _install(make_dist, body)
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider", "-k", guard)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, f"a plugin that {broken} passed:\n{result.stdout}"
    assert "contract: " in str(result.stdout), "the failure names the contract point"
