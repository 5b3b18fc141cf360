"""ChunkedPipe, the SFTP channel's receive buffer, against paramiko's BufferedPipe."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offsite_sftp._paramiko import paramiko
from offsite_sftp.inbuffer import ChunkedPipe

BufferedPipe = paramiko.buffered_pipe.BufferedPipe
PipeTimeout = paramiko.buffered_pipe.PipeTimeout

ops = st.lists(st.one_of(
    st.tuples(st.just("feed"), st.binary(max_size=300)),
    st.tuples(st.just("read"), st.integers(min_value=0, max_value=700)),
    st.tuples(st.just("empty"), st.none()),
), max_size=60)


@given(ops)
def test_every_sequence_of_feeds_and_reads_gives_what_paramikos_pipe_gives(steps):
    ours, theirs = ChunkedPipe(), BufferedPipe()
    for op, arg in steps:
        if op == "feed":
            ours.feed(arg)
            theirs.feed(arg)
        elif op == "read" and len(theirs):  # an empty pipe would block both
            assert ours.read(arg) == theirs.read(arg)
        elif op == "empty":
            assert ours.empty() == theirs.empty()
        assert len(ours) == len(theirs)
        assert ours.read_ready() == theirs.read_ready()
    ours.close()
    theirs.close()
    assert ours.read(10**6) == theirs.read(10**6)
    assert ours.read(1) == b"" == theirs.read(1)


def test_a_read_of_exactly_what_arrived_returns_the_piece_itself():
    pipe, piece = ChunkedPipe(), b"x" * 65536
    pipe.feed(piece)
    assert pipe.read(65536) is piece


def test_a_read_waits_for_data_fed_from_another_thread():
    pipe = ChunkedPipe()
    feeder = threading.Timer(0.05, pipe.feed, args=(b"late",))
    feeder.start()
    try:
        assert pipe.read(10, timeout=10) == b"late"
    finally:
        feeder.cancel()


def test_a_read_that_gets_nothing_times_out_and_loses_nothing():
    pipe = ChunkedPipe()
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.05)
    with pytest.raises(PipeTimeout):
        pipe.read(10, timeout=0.0)
    pipe.feed(b"after")
    assert pipe.read(10, timeout=0.0) == b"after"


def test_close_wakes_a_waiting_reader_with_the_end():
    pipe = ChunkedPipe()
    threading.Timer(0.05, pipe.close).start()
    started = time.monotonic()
    assert pipe.read(10, timeout=10) == b""
    assert time.monotonic() - started < 5


def test_the_event_is_set_while_data_waits_or_the_pipe_is_closed():
    pipe, event = ChunkedPipe(), threading.Event()
    pipe.set_event(event)
    assert not event.is_set()
    pipe.feed(b"ab")
    assert event.is_set()
    assert pipe.read(1) == b"a"
    assert event.is_set()
    assert pipe.read(1) == b"b"
    assert not event.is_set()
    pipe.close()
    assert event.is_set()
