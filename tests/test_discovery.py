"""Plugin discovery: stevedore finds, pluggy validates, nothing bad is fatal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.errors import PluginError
from offsite.plugins import DISABLE_ENV, discover
from offsite.session import Transport
from offsite.transport import Endpoint

MakeDist = Callable[..., str]


def by_scheme(scheme: str):
    info = discover().info(scheme)
    assert info is not None, f"{scheme} not discovered"
    return info


def test_installed_local_plugin_is_ok() -> None:
    info = by_scheme("file")
    assert (info.distribution, info.status) == ("offsite-local", "ok")
    assert {"connect", "put", "get", "list", "delete", "close"} <= set(info.hooks)


def test_plugin_made_on_the_fly_is_discovered(make_dist: MakeDist) -> None:
    make_dist("offsite-demo", schemes={"demo": "plugin"}, version="4.5.6")
    info = by_scheme("demo")
    assert (info.distribution, info.version, info.status) == ("offsite-demo", "4.5.6", "ok")
    assert info.entry_point.endswith(":plugin")


def test_import_failure_is_listed_and_others_still_work(make_dist: MakeDist) -> None:
    make_dist("offsite-broken", "raise RuntimeError('boom at import')\n",
              schemes={"broken": "plugin"})
    make_dist("offsite-fine", schemes={"fine": "plugin"})
    broken = by_scheme("broken")
    assert broken.status == "failed"
    assert "boom at import" in broken.reason and "RuntimeError" in broken.reason
    assert by_scheme("fine").status == "ok"
    assert by_scheme("file").status == "ok"


def test_missing_dependency_is_listed(make_dist: MakeDist) -> None:
    make_dist("offsite-needy", "import no_such_library_xyz\n", schemes={"needy": "plugin"})
    info = by_scheme("needy")
    assert info.status == "failed" and "no_such_library_xyz" in info.reason


def test_wrong_signature_is_refused_with_reason(make_dist: MakeDist, good_plugin: str) -> None:
    source = good_plugin.replace(
        "def put(self, conn, path, transfer)", "def put(self, conn, path, transfer, extra)"
    )
    make_dist("offsite-wrongsig", source, schemes={"wrongsig": "plugin"})
    info = by_scheme("wrongsig")
    assert info.status == "failed"
    assert "put" in info.reason and "extra" in info.reason
    assert "\n" not in info.reason


def test_misspelled_hook_is_refused(make_dist: MakeDist, good_plugin: str) -> None:
    source = good_plugin + "\n" + (
        "class Typo(Plugin):\n"
        "    @hookimpl\n"
        "    def dlete(self, conn, path): return True\n"
        "typo = Typo()\n"
    )
    make_dist("offsite-typo", source, schemes={"typo": "typo"})
    info = by_scheme("typo")
    assert info.status == "failed" and "dlete" in info.reason


def test_missing_required_hook_is_refused(make_dist: MakeDist, good_plugin: str) -> None:
    source = good_plugin.replace("    @hookimpl\n    def get(", "    def get(")
    make_dist("offsite-noget", source, schemes={"noget": "plugin"})
    info = by_scheme("noget")
    assert info.status == "failed" and "required hook(s) get" in info.reason


def test_invalid_scheme_name_is_refused_without_import(make_dist: MakeDist) -> None:
    make_dist("offsite-badname", "raise SystemExit('must not be imported')\n",
              schemes={"Not_A Scheme": "plugin"})
    info = by_scheme("Not_A Scheme")
    assert info.status == "failed" and "not a valid URL scheme" in info.reason
    assert info.distribution == "offsite-badname"


def test_two_plugins_claiming_one_scheme_are_both_refused(make_dist: MakeDist) -> None:
    make_dist("offsite-twin-a", schemes={"twin": "plugin"})
    make_dist("offsite-twin-b", schemes={"twin": "plugin"})
    twins = [p for p in discover().plugins if p.scheme == "twin"]
    assert {p.distribution for p in twins} == {"offsite-twin-a", "offsite-twin-b"}
    assert all(p.status == "failed" and "claimed by" in p.reason for p in twins)


def test_disabled_plugin_is_not_imported(
    make_dist: MakeDist, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_dist("offsite-off", "raise SystemExit('must not be imported')\n",
              schemes={"off": "plugin"})
    # By scheme or by distribution name, with stray spaces.
    monkeypatch.setenv(DISABLE_ENV, "off, offsite-local ,something-else")
    registry = discover()
    assert registry.info("off").status == "disabled"
    assert registry.info("file").status == "disabled"
    assert DISABLE_ENV in registry.info("file").reason


def test_unusable_scheme_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every official plugin is installed here: an official one that is not.
    from offsite import plugins

    monkeypatch.setitem(plugins.OFFICIAL, "nfs", "offsite-nfs")
    with pytest.raises(PluginError, match="offsite-nfs"):
        Transport.for_endpoint(Endpoint.from_url("nfs://h/share/x"))
    monkeypatch.setenv(DISABLE_ENV, "file")
    with pytest.raises(PluginError, match="disabled"):
        Transport.for_endpoint(Endpoint.from_url("file:///tmp/x"))


def test_targets_command_lists_every_plugin(make_dist: MakeDist) -> None:
    make_dist("offsite-broken", "raise RuntimeError('boom at import')\n",
              schemes={"broken": "plugin"})
    make_dist("offsite-demo", schemes={"demo": "plugin"})
    runner = CliRunner()
    result = runner.invoke(cli, ["targets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {p["scheme"]: p for p in json.loads(result.stdout)["targets"]}
    assert rows["file"]["status"] == "ok"
    assert rows["demo"]["distribution"] == "offsite-demo"
    assert rows["broken"]["status"] == "failed" and "boom" in rows["broken"]["reason"]

    table = runner.invoke(cli, ["targets"])
    assert table.exit_code == 0
    for word in ("offsite-local", "offsite-demo", "offsite-broken", "failed to load", "boom"):
        assert word in table.stdout


def test_hook_leaving_out_an_argument_is_refused(make_dist: MakeDist, good_plugin: str) -> None:
    source = good_plugin.replace("def get(self, conn, path, offset)", "def get(self, conn, path)")
    make_dist("offsite-nooffset", source, schemes={"nooffset": "plugin"})
    info = by_scheme("nooffset")
    assert info.status == "failed" and "leaves out offset" in info.reason


def test_discovery_for_some_schemes_imports_only_those(make_dist: MakeDist) -> None:
    # `offsite run` of a job with file:// targets must not pay for importing
    # boto3 or paramiko: it asks only for the schemes its config uses.
    make_dist("offsite-heavy", "raise SystemExit('must not be imported')\n",
              schemes={"heavy": "plugin"})
    from offsite.plugins import installed_schemes

    assert {"file", "heavy"} <= installed_schemes()  # known without importing
    registry = discover({"file"})
    assert [p.scheme for p in registry.plugins] == ["file"]
    assert registry.info("file").status == "ok"


OPTIONS_HOOK = """class Plugin:
    @hookimpl
    def options(self): return {"region": "where", "ca_file": "the CA", "storage_class": "tier"}
"""


def _config_with(tmp_path, url: str, options: str) -> str:
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    config = tmp_path / "offsite.toml"
    config.write_text(f'''
[[job]]
name = "nightly"
destination = "{dest}"
[[job.target]]
name = "first"
url = "file://{tmp_path}/first"
[[job.target]]
name = "second"
url = "{url}"
[job.target.options]
{options}
''')
    return str(config)


def _declaring(good_plugin: str) -> str:
    return good_plugin.replace("class Plugin:\n", OPTIONS_HOOK)


def test_an_option_the_plugin_does_not_declare_is_refused_before_anything_runs(
        make_dist: MakeDist, good_plugin: str, tmp_path) -> None:
    make_dist("offsite-declaring", _declaring(good_plugin), schemes={"decl": "plugin"})
    config = _config_with(tmp_path, "decl://host/folder", 'region = "x"\ncafile = "/ca.pem"')
    for command in (["check"], ["plan"], ["run"]):
        result = CliRunner().invoke(cli, ["--config", config, *command])
        assert result.exit_code == 2, (command, result.output)
        assert (f"{config}: job[0].target[1].options.cafile: offsite-declaring takes no "
                "option 'cafile'; did you mean 'ca_file'?") in result.stderr
        assert "ca_file, region, storage_class" in result.stderr
    assert not (tmp_path / "first").exists(), "nothing connected, not even the good target"

    fine = _config_with(tmp_path, "decl://host/folder", 'region = "x"\nca_file = "/ca.pem"')
    from offsite.config import Config
    from offsite.plugins import discover_for

    assert discover_for(Config.load(Path(fine))).info("decl").options == {
        "region": "where", "ca_file": "the CA", "storage_class": "tier"}


def test_file_targets_take_no_options(tmp_path) -> None:
    config = _config_with(tmp_path, f"file://{tmp_path}/second", 'sse = "AES256"')
    result = CliRunner().invoke(cli, ["--config", config, "check"])
    assert result.exit_code == 2
    assert "offsite-local takes no option 'sse' (its options: none)" in result.stderr


def test_a_plugin_without_the_options_hook_is_not_checked(make_dist: MakeDist,
                                                          tmp_path) -> None:
    make_dist("offsite-silent", schemes={"silent": "plugin"})
    config = _config_with(tmp_path, "silent://host/folder", 'anything = 1')
    from offsite.config import Config
    from offsite.plugins import discover_for

    registry = discover_for(Config.load(Path(config)))
    assert registry.info("silent").options is None


def test_an_options_hook_returning_nonsense_fails_the_plugin(make_dist: MakeDist,
                                                             good_plugin: str) -> None:
    source = _declaring(good_plugin).replace('return {"region": "where"', 'return ["region"]  # {')
    make_dist("offsite-odd", source, schemes={"odd": "plugin"})
    info = by_scheme("odd")
    assert info.status == "failed" and "mapping of option names" in info.reason


def test_capabilities_are_read_from_the_hook(make_dist: MakeDist, good_plugin: str) -> None:
    source = good_plugin.replace("class Plugin:", "class Plugin:\n    @hookimpl\n"
                                 "    def capabilities(self): return {'resume': False}\n")
    make_dist("offsite-oneshot", source, schemes={"oneshot": "plugin"})
    make_dist("offsite-plain", schemes={"plain": "plugin"})
    info = by_scheme("oneshot")
    assert info.status == "ok" and info.capabilities == {"resume": False}
    assert info.resumable is False and info.to_json()["capabilities"] == {"resume": False}
    plain = by_scheme("plain")
    assert plain.capabilities == {} and plain.resumable is True, "no hook: all is possible"


def test_a_capabilities_hook_returning_nonsense_fails_the_plugin(make_dist: MakeDist,
                                                                 good_plugin: str) -> None:
    source = good_plugin.replace("class Plugin:", "class Plugin:\n    @hookimpl\n"
                                 "    def capabilities(self): return {'resume': 'no'}\n")
    make_dist("offsite-vague", source, schemes={"vague": "plugin"})
    info = by_scheme("vague")
    assert info.status == "failed" and "names to booleans" in info.reason
