"""Multipart uploads: part sizes, parts in flight, resume, and what memory they hold.

A file larger than :data:`SINGLE_PUT_MAX` goes up as a multipart upload
(:func:`upload`). Its parts are read in order from the one source stream
and sent by a few threads at once; :func:`part_size` keeps them within S3's
10,000 and :func:`parts_at_once` keeps the bytes held within
:data:`PART_MEMORY`. Over HTTPS with a checksum, parts too large for that
are not held at all: each streams from the source as it goes
(:class:`PartStream`), one at a time.

The upload id is the resume token, saved before the first part moves:
after a crash, ``list_parts`` says which parts arrived and only the rest
are sent. The object appears only at CompleteMultipartUpload, so a put is
atomic by nature; uploads of the same key that nobody will resume are
aborted before a fresh one starts (:func:`abort_stale`).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import botocore.exceptions

from offsite.errors import Fatal, SourceError, Transient
from offsite.transport import SourceReader, Transfer
from offsite_s3.checksums import body_checksum
from offsite_s3.connection import S3Connection
from offsite_s3.errors import error_code

#: Files up to this size go up in one request (held in memory: keep it small).
SINGLE_PUT_MAX = 8 << 20
#: S3's limits: parts of 5 MiB (but the last) to 5 GiB, at most 10,000 parts,
#: so an object of at most 48.8 TiB.
MIN_PART = 5 << 20
MAX_PART = 5 << 30
MAX_PARTS = 10_000
#: Large uploads use bigger parts (fewer requests); small ones keep 5 MiB so
#: a resume loses little. 6 MiB, not 8: a 1 GiB put then peaks at 91 MiB
#: instead of 99 (boto3 and its client alone take 60), in the same time
#: against moto within its noise (`bench/s3.py --parts put --size 1G`:
#: 7.26-9.78 s against 7.11-7.94 s with 8 MiB parts, alternated).
LARGE_PART = 6 << 20
LARGE_UPLOAD = 64 << 20
#: Parts uploaded at once (at most): every part is held in memory while it
#: goes, so they are also bounded by PART_MEMORY. Two, by measurement
#: (`bench/s3.py --parts put --size 1G`, moto): with 8 MiB parts a 1 GiB put
#: took 7.1 s and peaked at 99 MiB with three (HTTPS: 8.3 s, 93 MiB), 9.0 s
#: and 107 MiB with four; rclone 10.1 s (HTTPS 14.1 s) and boto3's default
#: of ten threads 9.4 s. With 6 MiB parts, two against three, alternated,
#: 2 runs each: 9.68 and 10.82 s against 9.81 and 10.67 s, 85 MiB against
#: 91 MiB; a chain job (`--parts job --volumes 1G`) 105 MiB against 111
#: on an empty target, 90 against 102 with three incrementals pending, in
#: the same time. The server is the limit, not the parts in flight.
PARALLEL_PARTS = 2
#: The bytes of parts held at once, the one being read included. Parts grow
#: with the file (size / 10,000 past 80 GiB): a 1 TiB image has 105 MiB
#: parts, and three of them in flight would hold 315 MiB. Parts larger than
#: PART_MEMORY / PARALLEL_PARTS are therefore not held at all where that
#: can be done (HTTPS with a checksum: see PartStream): each streams from
#: the source as it goes, one at a time. Elsewhere fewer go at once, down to
#: one while the next is read (which still keeps a link busy: reading a part
#: takes far less time than sending it).
PART_MEMORY = 48 << 20


def part_size(size: int) -> int:
    """The part size for an upload of ``size`` bytes: at least 5 MiB, whole
    MiB, and never more than 10,000 parts."""
    need = math.ceil(size / MAX_PARTS)
    floor = LARGE_PART if size >= LARGE_UPLOAD else MIN_PART
    return max(floor, math.ceil(need / (1 << 20)) * (1 << 20))


def parts_at_once(step: int) -> int:
    """How many parts of ``step`` bytes a put holds at once (in flight, and
    the one being read): PARALLEL_PARTS, fewer if that would take more than
    PART_MEMORY, but at least 2."""
    return max(2, min(PARALLEL_PARTS, PART_MEMORY // step))


def read_exactly(reader: SourceReader, n: int) -> bytearray:
    """``n`` bytes from the source, read straight into one buffer (no copies)."""
    buffer = bytearray(n)
    view = memoryview(buffer)
    filled = 0
    while filled < n:
        got = reader.readinto(view[filled:])
        if not got:
            break
        filled += got
    del view  # a bytearray with a live view cannot be resized
    if filled < n:
        del buffer[filled:]
    return buffer


def _part_entry(answer: Any, field: str) -> dict[str, Any]:
    """A part as CompleteMultipartUpload lists it: number, ETag, its checksum."""
    entry = {"PartNumber": int(answer["PartNumber"]), "ETag": str(answer["ETag"])}
    if field and answer.get(field):
        entry[field] = str(answer[field])
    return entry


class PartStream:
    """One part of a multipart upload as a request body that reads straight
    from the upload's source stream: nothing of it is held but what botocore
    and the source's read-ahead buffer. It can be read once only, so a retry
    by botocore (which rewinds the body) fails; the put fails Transient then,
    and the next attempt resumes after the parts that arrived."""

    def __init__(self, reader: SourceReader, length: int) -> None:
        self._reader, self._left, self._length = reader, length, length
        #: What the source raised, if it did: botocore sees only a failed
        #: request (and retries it), so the put re-raises this instead.
        self.error: SourceError | None = None

    def __len__(self) -> int:  # botocore's Content-Length (S3's decoded length)
        return self._length

    def read(self, size: int | None = -1, /) -> bytes:
        want = self._left if size is None or size < 0 else min(size, self._left)
        try:
            data = self._reader.read(want) if want else b""
        except SourceError as exc:
            self.error = exc
            raise
        self._left -= len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset != 0 or whence != 0 or self._left != self._length:
            raise OSError("a part read from the source cannot be sent again")
        return 0

    def tell(self) -> int:
        return self._length - self._left


def upload(conn: S3Connection, key: str, transfer: Transfer,
           extra: Mapping[str, str]) -> None:
    """Upload ``transfer``'s source to ``key`` as a multipart upload, resuming
    the one its token names if S3 still has it; ``extra`` are the object's
    parameters for CreateMultipartUpload (storage class, encryption …).

    :raises Fatal: the file is larger than one S3 object can be (before
        anything moves).
    :raises Transient: a streamed part failed midway (botocore cannot send it
        again); the next attempt resumes after the parts that arrived.
    :raises SourceError: the source failed, not the target.
    """
    client, bucket = conn.client, conn.bucket
    size = transfer.size
    step = part_size(size)
    if step > MAX_PART:  # before anything moves: S3 would refuse it at the end
        raise Fatal(f"{size / (1 << 40):.1f} TiB is more than one S3 object can hold "
                    "(10,000 parts of 5 GiB: 48.8 TiB)",
                    fix="replicate this job to a target of another kind, or back the "
                    "volume up in smaller pieces")
    streamed = conn.trailing_checksums and step * PARALLEL_PARTS > PART_MEMORY
    held = 1 if streamed else parts_at_once(step)
    done: dict[int, dict[str, Any]] = {}  # part number -> its entry for Complete
    checksum = conn.checksum
    field = f"Checksum{checksum}" if checksum else ""
    part_args = {"ChecksumAlgorithm": checksum} if checksum else {}
    upload_id = None
    token = transfer.resume
    if token and token.get("key") == key and token.get("upload_id") \
            and token.get("part_size") == step and token.get("checksum") == checksum:
        upload_id = str(token["upload_id"])
        try:
            for page in client.get_paginator("list_parts").paginate(
                    Bucket=bucket, Key=key, UploadId=upload_id):
                for p in page.get("Parts", []):
                    done[int(p["PartNumber"])] = _part_entry(p, field)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc)[0] != "NoSuchUpload":
                raise
            upload_id, done = None, {}
    if upload_id is None:
        abort_stale(conn, key)
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key,
                                                   **extra)["UploadId"]
        transfer.save_token({"key": key, "upload_id": upload_id, "part_size": step,
                             "checksum": checksum})
    count = math.ceil(size / step)
    first = 1
    while first in done:  # resume after the parts that are there, in order
        first += 1
    offset = min(size, (first - 1) * step)
    sent = offset
    transfer.progress(sent)

    def send(number: int, data: bytearray | PartStream) -> tuple[int, dict[str, Any], int]:
        given = {} if isinstance(data, PartStream) else body_checksum(checksum, data)
        try:
            answer = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id,
                                        PartNumber=number, Body=data,
                                        ContentLength=len(data), **part_args, **given)
        except Exception as exc:
            if isinstance(data, PartStream):
                if data.error is not None:
                    raise data.error from None  # the source failed, not the target
                if isinstance(exc, botocore.exceptions.UnseekableStreamError):
                    # botocore's retry after a failure mid-part: the next
                    # attempt resumes after the parts that arrived.
                    raise Transient(f"the connection failed while part {number} was "
                                    "being sent") from None
            raise
        return number, _part_entry({**answer, "PartNumber": number}, field), len(data)

    # Parts are read in order from the one source stream and sent by a few
    # threads at once (boto3 releases the GIL on the network); at most
    # ``held`` are in memory (see parts_at_once), so memory stays bounded.
    in_flight: collections.deque[Future[tuple[int, dict[str, Any], int]]] = \
        collections.deque()

    def settle(limit: int) -> None:
        nonlocal sent
        while len(in_flight) > limit:
            number, entry, length = in_flight.popleft().result()
            done[number] = entry
            sent += length
            transfer.progress(sent)

    with transfer.open(offset) as reader, ThreadPoolExecutor(held) as pool:
        try:
            for number in range(first, count + 1):
                length = min(step, size - (number - 1) * step)
                # A streamed part reads the source as it goes (held is 1:
                # it is done before the next begins); others are read whole.
                body = (PartStream(reader, length) if streamed
                        else read_exactly(reader, length))
                in_flight.append(pool.submit(send, number, body))
                settle(held - 1)  # room for the next part to be read
            settle(0)
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id,
        MultipartUpload={"Parts": [done[n] for n in range(1, count + 1)]})


def abort_stale(conn: S3Connection, key: str) -> None:
    """Abort multipart uploads of ``key`` that nobody will resume."""
    pages = conn.client.get_paginator("list_multipart_uploads").paginate(
        Bucket=conn.bucket, Prefix=key)
    for page in pages:
        for pending in page.get("Uploads", []):
            if pending["Key"] == key:
                conn.client.abort_multipart_upload(Bucket=conn.bucket, Key=key,
                                                   UploadId=pending["UploadId"])


__all__ = ["LARGE_PART", "LARGE_UPLOAD", "MAX_PART", "MAX_PARTS", "MIN_PART", "PARALLEL_PARTS",
           "PART_MEMORY", "SINGLE_PUT_MAX", "PartStream", "abort_stale", "part_size",
           "parts_at_once", "read_exactly", "upload"]
