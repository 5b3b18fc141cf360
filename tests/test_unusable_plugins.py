"""A target whose plugin is switched off or broken fails on its own.

``check``, ``plan``, ``run`` and ``verify`` give the same message for it (which plugin,
why, and the fix) and exit code 2, and every target of a working plugin, in
the same job and in other jobs, is still checked, planned or replicated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from offsite.errors import PluginError
from offsite.plugins import DISABLE_ENV
from offsite.session import Transport
from offsite.testing.site import Site, files
from offsite.transport import Endpoint

MakeDist = Callable[..., str]

PIP = "pip install --upgrade --force-reinstall offsite-vault"

#: How the plugin of the ``vault`` scheme is unusable, and the message for it.
CASES = {
    "disabled": (
        "plugin offsite-vault (vault://): disabled: listed in OFFSITE_DISABLED_PLUGINS. "
        "Fix: remove 'vault' from OFFSITE_DISABLED_PLUGINS to use it again (or remove "
        "its targets from the configuration)"),
    "fails-to-import": (
        "plugin offsite-vault (vault://): failed to load: failed to import: RuntimeError: "
        f"boom at import. Fix: reinstall or upgrade offsite-vault ({PIP})"),
    "fails-validation": (
        "plugin offsite-vault (vault://): failed to load: does not implement the required "
        f"hook(s) get. Fix: reinstall or upgrade offsite-vault ({PIP})"),
}


@pytest.fixture(params=sorted(CASES))
def unusable(request: pytest.FixtureRequest, site: Site, make_dist: MakeDist,
             good_plugin: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Two jobs, one with a target of the unusable plugin beside a working one;
    returns the message every command must give for that target."""
    case: str = request.param
    if case == "disabled":
        # Never imported: an import would end the test run.
        make_dist("offsite-vault", "raise SystemExit('a disabled plugin was imported')\n",
                  schemes={"vault": "plugin"})
        monkeypatch.setenv(DISABLE_ENV, "vault")
    elif case == "fails-to-import":
        make_dist("offsite-vault", "raise RuntimeError('boom at import')\n",
                  schemes={"vault": "plugin"})
    else:
        make_dist("offsite-vault", good_plugin.replace("    @hookimpl\n    def get(",
                                                       "    def get("),
                  schemes={"vault": "plugin"})
    site.image()
    weekly = site.root / "weekly-destination"
    weekly.mkdir()
    for image in site.dest.glob("*.ofi"):
        shutil.copy2(image, weekly / image.name)
    site.config.write_text(f'''
[[job]]
name = "nightly"
destination = "{site.dest}"
[[job.target]]
name = "vault"
url = "vault://backup@vault.example/srv"
[[job.target]]
name = "usb"
url = "{site.target('usb').as_uri()}"

[[job]]
name = "weekly"
destination = "{weekly}"
[[job.target]]
name = "disk"
url = "{site.target('disk').as_uri()}"
''')
    return CASES[case]


def test_check_reports_it_and_checks_the_others(site: Site, unusable: str) -> None:
    result = site.cli("check", code=2)
    assert (f"nightly.vault  vault://backup@vault.example/srv\n"
            f"  FAILED plugin        offsite-vault\n"
            f"         {unusable}\n") in result.stdout
    assert result.stdout.count(unusable) == 1
    lines = result.stdout.splitlines()
    for target in ("nightly.usb", "weekly.disk"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{target}  "))
        steps = [line.split()[:2] for line in lines[at + 1:at + 6]]
        assert steps == [["ok", "folder"], ["ok", "probe-write"], ["ok", "probe-list"],
                         ["ok", "probe-read"], ["ok", "probe-delete"]], f"{target} unchecked"


def test_check_of_that_target_alone(site: Site, unusable: str) -> None:
    result = site.cli("check", "nightly", "vault", code=2)
    assert unusable in result.stdout


def test_plan_reports_it_and_plans_the_others(site: Site, unusable: str) -> None:
    result = site.cli("plan", code=2)
    assert result.stderr.count(f"nightly.vault: FAILED: {unusable}\n") == 1, result.stderr
    assert "nightly.vault" not in result.stdout
    for target in ("nightly.usb", "weekly.disk"):
        assert f"{target}:\n  put    vol-b001.ofi  <- vol-b001.ofi  (missing)" in result.stdout

    doc = json.loads(site.cli("plan", "--json", code=2).stdout)
    by_target = {(p["job"], p["target"]): p for p in doc["plans"]}
    assert by_target[("nightly", "vault")]["error"] == unusable
    assert by_target[("nightly", "vault")]["actions"] == []
    assert by_target[("nightly", "usb")]["error"] is None
    assert [a["remote"] for a in by_target[("weekly", "disk")]["actions"]] == ["vol-b001.ofi"]


def test_run_replicates_the_others(site: Site, unusable: str) -> None:
    result = site.cli("run", code=2)
    assert result.stderr.count(f"nightly.vault: FAILED: {unusable}\n") == 1, result.stderr
    assert files(site.target("usb")) == ["vol-b001.ofi"], "the same job's other target ran"
    assert files(site.target("disk")) == ["vol-b001.ofi"], "the other job ran"
    assert "run done (exit code 2)" in result.stderr


def test_verify_reports_it_and_verifies_the_others(site: Site, unusable: str) -> None:
    site.cli("run", code=2)
    result = site.cli("verify", "nightly", code=2)
    assert result.stderr.count(f"nightly.vault: FAILED: {unusable}\n") == 1, result.stderr
    assert "ok   nightly.usb  vol-b001.ofi" in result.stdout, "the job's other target"


def test_run_json_names_the_setup_step(site: Site, unusable: str) -> None:
    result = site.cli("run", "--json", code=2)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    (failed,) = [e for e in events if e["event"] == "target-failed"]
    assert (failed["job"], failed["target"], failed["step"]) == ("nightly", "vault", "setup")
    assert failed["error"] == unusable
    done = {(e["job"], e["target"]) for e in events if e["event"] == "target-done"}
    assert done == {("nightly", "usb"), ("weekly", "disk")}


def test_a_scheme_no_plugin_claims_still_stops_the_configuration(site: Site) -> None:
    # Not installed at all is most likely a typo in the URL: nothing runs.
    site.one_target(site.target("t"), scheme="vualt")
    result = site.cli("run", code=2)
    assert ("job[0].target[0].url: no installed plugin handles 'vualt://' URLs; install a "
            "plugin for the 'vualt' scheme") in result.stderr
    assert not site.target("t").exists()


def test_the_fix_names_what_to_take_out_of_the_list(make_dist: MakeDist,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist("offsite-vault", schemes={"vault": "plugin"})
    monkeypatch.setenv(DISABLE_ENV, "file, offsite-vault")
    with pytest.raises(PluginError) as caught:
        Transport.for_endpoint(Endpoint.from_url("vault://h/x"))
    assert caught.value.hint == ("remove 'offsite-vault' from OFFSITE_DISABLED_PLUGINS to use "
                                 "it again (or remove its targets from the configuration)")


def test_two_plugins_claiming_one_scheme_say_to_uninstall_one(make_dist: MakeDist) -> None:
    make_dist("offsite-twin-a", schemes={"twin": "plugin"})
    make_dist("offsite-twin-b", schemes={"twin": "plugin"})
    with pytest.raises(PluginError) as caught:
        Transport.for_endpoint(Endpoint.from_url("twin://h/x"))
    assert caught.value.hint == "uninstall all but one of offsite-twin-a, offsite-twin-b"


def test_plan_goes_on_past_an_unreachable_target_and_ranks_like_run(
        site: Site, make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dist("offsite-vault", schemes={"vault": "plugin"})
    blocker = site.root / "blocker"
    blocker.write_text("a file where the target folder should be")
    site.image()
    site.configure(f'''
        [[job.target]]
        name = "blocked"
        url = "{blocker.as_uri()}"
        [[job.target]]
        name = "usb"
        url = "{site.target('usb').as_uri()}"
        [[job.target]]
        name = "vault"
        url = "vault://h/x"
    ''')
    result = site.cli("plan", code=1)
    assert "nightly.blocked: FAILED: [nightly.blocked] folder failed:" in result.stderr
    assert "nightly.usb:\n  put    vol-b001.ofi" in result.stdout

    monkeypatch.setenv(DISABLE_ENV, "vault")
    result = site.cli("plan", code=2)  # as run ranks them: the plugin before the target
    assert "nightly.blocked: FAILED:" in result.stderr
    assert "nightly.vault: FAILED: plugin offsite-vault (vault://): disabled" in result.stderr
    assert "nightly.usb:\n  put    vol-b001.ofi" in result.stdout
    assert site.cli("run", code=2).stderr.count("FAILED") == 2


@pytest.mark.parametrize("flags", [(), ("--quiet",), ("-vv",)], ids=["default", "quiet", "vv"])
def test_stevedore_says_nothing_of_its_own(site: Site, make_dist: MakeDist,
                                           tmp_path: Path, flags: tuple[str, ...]) -> None:
    # A real process: in-process, pytest's log capture takes what stevedore
    # logs before it could reach stderr.
    make_dist("offsite-vault", "raise RuntimeError('boom at import')\n",
              schemes={"vault": "plugin"})
    site.image()
    site.configure(f'''
        [[job.target]]
        name = "vault"
        url = "vault://h/x"
        [[job.target]]
        name = "usb"
        url = "{site.target('usb').as_uri()}"
    ''')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    for command in (["run"], ["check"], ["plan"], ["targets", "--json"]):
        done = subprocess.run(
            [sys.executable, "-c", "from offsite.cli import main; main()",
             *flags, "--config", str(site.config), *command],
            capture_output=True, text=True, env=env, timeout=60, check=False)
        assert "Could not load" not in done.stderr, (command, done.stderr)
        assert "WARNING stevedore" not in done.stderr, (command, done.stderr)
        said = done.stdout + done.stderr
        if command[0] == "targets":
            assert done.returncode == 0
            assert "failed to import: RuntimeError: boom at import" in said
        else:
            assert done.returncode == 2, (command, said)
            assert said.count(CASES["fails-to-import"]) == 1, (command, said)
        if "--quiet" in flags:
            assert "WARNING" not in done.stderr and "INFO" not in done.stderr
