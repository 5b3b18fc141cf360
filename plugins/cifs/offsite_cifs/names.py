"""Names SMB cannot hold, refused before anything is sent.

SMB names follow Windows' rules (MS-FSCC 2.1.5.2): no ``"*:<>?|`` (nor
``\\``, which the core refuses everywhere), and Windows strips a trailing
space or dot. Samba refuses the characters (STATUS_OBJECT_NAME_INVALID)
but shows a folder whose name ends in a space under a mangled 8.3 name
(``TIXEP6~1``): an upload there would be listed under another name and
never found again. So the plugin refuses both, naming the rule.
"""

from __future__ import annotations

import re

from offsite.errors import Fatal

#: A pattern searched in one name component -> why SMB cannot hold it (the
#: conformance suite's ``unstorable`` fixture takes this mapping as it is).
UNSTORABLE = {
    r'["*:<>?|]': 'SMB forbids the characters " * : < > ? | in names',
    r"[ .]\Z": "SMB (Windows) drops a space or dot at the end of a name; Samba mangles it",
}

_RULES = [(re.compile(pattern), why) for pattern, why in UNSTORABLE.items()]


def check(path: str) -> None:
    """Refuse ``path`` (relative, '/'-separated) when SMB cannot hold one of its names.

    :raises Fatal: naming the name and the rule; the core adds the path.
    """
    for name in path.split("/"):
        for pattern, why in _RULES:
            if pattern.search(name):
                raise Fatal(f"cannot store the name {name!r}: {why}",
                            fix="rename the image or folder (its label or the target "
                            "folder), or use a target other than SMB")
