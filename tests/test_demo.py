"""The README's demo must keep working: run it as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def test_demo_replicates_and_restores_identical_bytes() -> None:
    result = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "identical" in result.stderr
    assert "4 images sound, 0 problems" in result.stderr
    assert "demo/demo-b001-i003.ofi" in result.stderr
