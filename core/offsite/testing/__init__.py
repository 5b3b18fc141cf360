"""The conformance suite every target plugin runs, shipped inside the core.

A plugin's test module is one fixtures class plus one-line subclasses
(the style of fsspec's ``tests/abstract``)::

    import pytest
    from offsite.testing import conformance

    class SftpFixtures(conformance.TransportFixtures):
        @pytest.fixture
        def endpoint(self, sftp_server): ...          # a fresh, empty folder

        @pytest.fixture
        def broken_endpoint(self, sftp_server): ...   # (endpoint, step that must fail)

    class TestSftp(conformance.AllTests, SftpFixtures):
        pass

See :mod:`offsite.testing.conformance` for the fixtures and the test classes,
and docs/PLUGINS.md for a walk-through.
"""
