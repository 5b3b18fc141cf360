"""The README's demo must keep working: run it as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def test_demo_replicates_consolidates_and_restores_identical_bytes() -> None:
    result = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    err = result.stderr
    assert "vault/vol-b001-i003.ofi" in err and "incremental 1..3" in err
    assert "mirror/vol-b001-i002.ofi" in err
    assert err.count("placed vol-b001-i004.ofi") == 2, "the second run sends only #4"
    assert "identical" in err
