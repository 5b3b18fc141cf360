"""The transport conformance suite: fixtures to fill in, and test mixins.

Every target plugin runs it against its real server. A plugin's test file
is one fixtures class plus one line::

    from offsite.testing import conformance

    class FooFixtures(conformance.TransportFixtures):
        ...  # endpoint, broken_endpoint, wrong_credentials, faults

    class TestFoo(conformance.AllTests, FooFixtures):
        pass

:mod:`~offsite.testing.conformance.fixtures` says what to provide;
:mod:`~offsite.testing.conformance.contract` lists the contract points, one
constant each, with which every assertion message starts. The tests, by
subject: :mod:`~offsite.testing.conformance.transfer` (put, get, atomic
puts, resume, streaming, threads), :mod:`~offsite.testing.conformance.listing`
(list, delete, names), :mod:`~offsite.testing.conformance.names` (awkward
names, NFD, characters a protocol cannot hold, length limits) and
:mod:`~offsite.testing.conformance.checks` (check, errors, options, secrets).
"""

from __future__ import annotations

from offsite.testing.conformance.checks import (
    FAULTS,
    CheckTests,
    ErrorTests,
    OptionsTests,
    SecretTests,
)
from offsite.testing.conformance.contract import (
    CANARY,
    ESCAPE_NAMES,
    NFD_NAME,
    UNICODE_NAMES,
    raw_paths,
    read_all,
    sha256_of,
    tamper_partial_file,
)
from offsite.testing.conformance.fixtures import (
    Fault,
    Provoke,
    Symlink,
    Tamper,
    TransportFixtures,
)
from offsite.testing.conformance.listing import (
    DeleteTests,
    ListTests,
    SymlinkTests,
    UnicodeTests,
)
from offsite.testing.conformance.names import AWKWARD_NAMES, NameLimits, NameTests
from offsite.testing.conformance.transfer import (
    AtomicResumeTests,
    PutGetTests,
    StreamingTests,
    ThreadTests,
)
from offsite.testing.sources import MiB


class AllTests(
    PutGetTests,
    AtomicResumeTests,
    StreamingTests,
    ThreadTests,
    ListTests,
    DeleteTests,
    UnicodeTests,
    NameTests,
    SymlinkTests,
    CheckTests,
    ErrorTests,
    OptionsTests,
    SecretTests,
):
    """Every conformance test: ``class TestMine(AllTests, MyFixtures): pass``."""


__all__ = [
    "AWKWARD_NAMES",
    "CANARY",
    "ESCAPE_NAMES",
    "FAULTS",
    "NFD_NAME",
    "UNICODE_NAMES",
    "AllTests",
    "AtomicResumeTests",
    "CheckTests",
    "DeleteTests",
    "ErrorTests",
    "Fault",
    "ListTests",
    "MiB",
    "NameLimits",
    "NameTests",
    "OptionsTests",
    "Provoke",
    "PutGetTests",
    "SecretTests",
    "StreamingTests",
    "Symlink",
    "SymlinkTests",
    "Tamper",
    "ThreadTests",
    "TransportFixtures",
    "UnicodeTests",
    "raw_paths",
    "read_all",
    "sha256_of",
    "tamper_partial_file",
]
