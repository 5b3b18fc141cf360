"""offsite: replicate backup image sets to offsite targets.

The core knows images, chains, plans and the journal; every protocol is a
separately installable plugin discovered through the ``offsite.targets``
entry-point group. A plugin author needs two names from here:

* :data:`hookimpl`, the marker for the functions that implement the
  transport contract of :mod:`offsite.hookspecs`;
* :mod:`offsite.errors`, the error tree those functions raise.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: The name pluggy uses to tie markers, specs and managers together.
PROJECT = "offsite"

#: Marks a transport plugin's implementation of a hook: ``@offsite.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "__version__", "hookimpl"]
