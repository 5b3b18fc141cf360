"""Every protocol's benchmark in one go (issue 22), then ONE table across them.

``bench/run_all`` runs this with the repository's .venv (or $PYTHON).

    bench/run_all [--protocols local,sftp,s3,ftp,webdav,cifs]
        [--parts put,get,job,restore,idle] [--size 1G] [--volumes 256M,1G]
        [--runs 3] [--tls] [--s3-warm-up 1G] [--workdir DIR] [--json FILE]

Runs bench/local.py, sftp.py, s3.py, ftp.py (FTP and FTPS), webdav.py and
cifs.py (signed and encrypted) one after the other, each with the same
--size, --volumes, --runs, --workdir and --parts (``--tls``: s3 and webdav
over HTTPS). Their reports go to stderr as they run; stdout gets the table:
per protocol and part, wall time offsite vs its reference (rclone, or
smbclient where it is the faster for SMB put and get), bytes sent, peak
RSS, the ratio, its goal, met or not. Needs root (sshd, smbd), rclone and
smbclient. A protocol whose benchmark fails is reported and the others go
on; the exit status is then 1.

Runtime: with ``--size 8M --volumes 8M --runs 1 --s3-warm-up 8M`` under a
minute on 2 busy CPUs (46 s: server and Python start-ups), about 3 minutes
with S3's default 1 GiB warm-up. At the defaults (1 GiB file, 256 MiB and
1 GiB volumes, 3 runs; 8 protocol variants) an estimated 45-90 minutes (not
measured: the machine is shared), with about 8 GiB free under --workdir
(each protocol's folder is removed before the next starts).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from driver import PARTS, table
from protocol import PYTHON, script

#: protocol → its script and the arguments that select its variants.
RUNS = {
    "local": ("local.py", []),
    "sftp": ("sftp.py", []),
    "s3": ("s3.py", []),
    "ftp": ("ftp.py", ["--modes", "ftp,ftps"]),
    "webdav": ("webdav.py", []),
    "cifs": ("cifs.py", ["--modes", "signed,encrypted"]),
}
TLS = {"s3", "webdav"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocols", default=",".join(RUNS),
                        help=f"comma-separated, of {','.join(RUNS)} (all)")
    parser.add_argument("--parts", default=",".join(PARTS), help="passed on (all)")
    parser.add_argument("--size", default="1G", help="put/get file size (1G)")
    parser.add_argument("--volumes", default="256M,1G", help="job volume sizes (256M,1G)")
    parser.add_argument("--runs", default="3", help="rounds per part (3)")
    parser.add_argument("--tls", action="store_true", help="s3 and webdav over HTTPS")
    parser.add_argument("--s3-warm-up", default=None,
                        help="bench/s3.py's --warm-up (its default: 1G)")
    parser.add_argument("--workdir", type=Path, default=None, help="passed on")
    parser.add_argument("--json", type=Path, default=None, help="write every row here")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.protocols.split(",") if p.strip()]
    if set(chosen) - set(RUNS):
        parser.error(f"--protocols: of {', '.join(RUNS)}")

    rows: list[dict[str, object]] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="offsite-run-all-") as tmp:
        for name in chosen:
            file, more = RUNS[name]
            out = Path(tmp, f"{name}.json")
            cmd = [PYTHON, script(file), "--parts", args.parts, "--size", args.size,
                   "--volumes", args.volumes, "--runs", args.runs, "--json", str(out), *more]
            if args.tls and name in TLS:
                cmd.append("--tls")
            if name == "s3" and args.s3_warm_up is not None:
                cmd += ["--warm-up", args.s3_warm_up]
            if args.workdir:
                cmd += ["--workdir", str(args.workdir)]
            print(f"\n######## {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
            done = subprocess.run(cmd, stdout=sys.stderr, check=False)
            if done.returncode or not out.exists():
                failed.append(f"{name} (exit status {done.returncode})")
                continue
            rows += json.loads(out.read_text())
    print(table(rows))
    met = sum(1 for r in rows if r["met"])
    print(f"\n{met} of {len(rows)} rows meet their goals")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    if failed:
        print(f"failed: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
