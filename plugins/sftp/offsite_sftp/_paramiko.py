"""paramiko, imported without invoke: the plugin imports this before paramiko.

paramiko imports invoke (45 ms, a third of paramiko's import time, paid by
every ``offsite run``) only to run ssh_config ``Match exec`` commands, and
offsite reads no ssh_config. invoke is blocked for that one import and
nothing else: importing it later works as usual.
"""

from __future__ import annotations

import sys

_BLOCK = "invoke" not in sys.modules
if _BLOCK:
    sys.modules["invoke"] = None  # type: ignore[assignment]
try:
    import paramiko
finally:
    if _BLOCK and sys.modules.get("invoke", 0) is None:
        del sys.modules["invoke"]

__all__ = ["paramiko"]
