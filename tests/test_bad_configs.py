"""The bad-configuration corpus (tests/bad_configs/): every file through the
real command line, `offsite plan` and `offsite check`.

Each case must exit with its documented code, name the config file and the
key in one ``error:`` line, print no traceback and no secret, and leave the
destination byte for byte as it was (and, refused, connect to nothing).
docs/ERRORS.md shows every case's message as printed: the last test fails
when that table is stale (``OFFSITE_WRITE_DOCS=1`` rewrites it).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from offsite.cli import cli
from offsite.testing.site import Site

CORPUS = Path(__file__).parent / "bad_configs"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text())["case"]
ERRORS_DOC = Path(__file__).parents[1] / "docs" / "ERRORS.md"
BEGIN, END = "<!-- bad-configs:begin -->", "<!-- bad-configs:end -->"
#: Written in the corpus's secret-bearing cases; must never be printed.
SECRET = "hunter2"
#: The test's folder as docs/ERRORS.md shows it.
SHOWN_ROOT = "/srv"


def make_site(root: Path) -> Site:
    """A destination with a full and an incremental, and a regular file beside it."""
    site = Site(root)
    site.image()
    site.image()
    (root / "afile").write_text("a file, not a folder\n")
    return site


def install(site: Site, name: str) -> None:
    """Write corpus file ``name`` as the site's config, its placeholders filled in."""
    data = (CORPUS / name).read_bytes()
    for mark, value in ((b"@DEST@", site.dest), (b"@ROOT@", site.root),
                        (b"@FILE@", site.root / "afile")):
        data = data.replace(mark, str(value).encode())
    site.config.write_bytes(data)


def invoke(site: Site, command: str) -> tuple[int, str, str]:
    """``offsite --config … COMMAND`` with $HOME in the test's folder (for ``~``)."""
    env = {"HOME": str(site.root), "XDG_CONFIG_HOME": str(site.root / "xdg"),
           "OFFSITE_CONFIG": None, "OFFSITE_PASSPHRASE": None}
    result = CliRunner().invoke(cli, ["--config", str(site.config), command], env=env)
    return result.exit_code, result.stdout, result.stderr


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every entry under ``folder``: its mode and, for files, its SHA-256."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (
        p.lstat().st_mode,
        hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
        for p in sorted(folder.rglob("*"))}


def test_every_file_has_one_case() -> None:
    files = sorted(p.name for p in CORPUS.iterdir() if p.name != "cases.toml")
    named = [c["file"] for c in CASES]
    assert len(named) == len(set(named)), "a file has two cases"
    assert sorted(named) == files
    assert len(files) >= 30


@pytest.mark.parametrize("command", ["plan", "check"])
@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_bad_config(case: dict[str, Any], command: str, tmp_path: Path) -> None:
    site = make_site(tmp_path)
    install(site, case["file"])
    before = snapshot(site.dest), (site.root / "afile").read_bytes()
    expected = case.get(command, case["code"])

    code, out, err = invoke(site, command)

    assert code == expected, (code, out, err)
    assert "Traceback" not in out + err
    assert SECRET not in out + err
    assert (snapshot(site.dest), (site.root / "afile").read_bytes()) == before
    if expected == 2:
        # One line that names the file and the key, and says what is wrong.
        assert err.startswith(f"error: {site.config}: {case['key']}: "), err
        assert case["says"] in err, err
        assert err.count("\n") == 1, err
        assert out == ""
        assert not (site.root / "targets").exists(), "a refused configuration connected"


def rendered_table(tmp_path: Path) -> str:
    """The markdown table of every case and what ``offsite plan`` prints."""
    lines = ["| file | case | exit code: plan, check | message (`offsite plan`, as printed) |",
             "|---|---|---|---|"]
    for n, case in enumerate(CASES):
        (tmp_path / str(n)).mkdir()
        site = make_site(tmp_path / str(n))
        install(site, case["file"])
        code, _, err = invoke(site, "plan")
        message = err.strip().replace(str(site.root), SHOWN_ROOT) or "(none: accepted)"
        codes = f"{code}, {case.get('check', case['code'])}"
        shown = message.replace("|", "\\|")  # a pipe would end the table cell
        lines.append(f"| `{case['file']}` | {case['what']} | {codes} | `` {shown} `` |")
    return "\n".join(lines)


def test_errors_doc_lists_every_case_as_printed(tmp_path: Path) -> None:
    text = ERRORS_DOC.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    fresh = f"{head}{BEGIN}\n{rendered_table(tmp_path)}\n{END}{tail}"
    if os.environ.get("OFFSITE_WRITE_DOCS") == "1":
        ERRORS_DOC.write_text(fresh, encoding="utf-8")
    assert text == fresh, ("docs/ERRORS.md is stale: run OFFSITE_WRITE_DOCS=1 "
                           "./scripts/test tests/test_bad_configs.py and commit it")
