"""The offsite side of the put and get parts: one ``session.put`` or one
``session.get`` in a fresh process, as the driver times them.

    ENDPOINT='{"url": ..., "options": {...}, "credentials": {...}}' \\
        python bench/transfer.py put FILE NAME
    ... python bench/transfer.py get NAME FILE

The endpoint, secrets included, travels in $OFFSITE_BENCH_ENDPOINT (JSON),
never in argv. Only the plugin for the URL's scheme is imported, as
``offsite run`` imports only its targets' plugins (all of them cost 0.2 s
of start-up: boto3, paramiko…). Nothing but the standard library and
offsite is imported here, so the process is what a user's would be.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offsite.session import Session

ENDPOINT_ENV = "OFFSITE_BENCH_ENDPOINT"
CHUNK = 1 << 20


def _session() -> Session:
    from offsite.session import Transport
    from offsite.transport import Endpoint

    spec = json.loads(os.environ.pop(ENDPOINT_ENV))
    endpoint = Endpoint.from_url(spec["url"], options=spec["options"],
                                 credentials=spec["credentials"])
    return Transport.for_endpoint(endpoint).connect(endpoint)


def put(file: str, name: str) -> None:
    """``session.put(NAME, FileSource(FILE))``; exits if the target holds another size."""
    from offsite.transport import FileSource

    with _session() as session:
        placed = session.put(name, FileSource(file))
    if placed.size != os.stat(file).st_size:
        sys.exit(f"placed {placed.size} bytes of {os.stat(file).st_size}")


def get(name: str, file: str) -> None:
    """``session.get(NAME)`` streamed into FILE (created, or replaced), 1 MiB a read."""
    with _session() as session, session.get(name) as stream, open(file, "wb") as out:
        while chunk := stream.read(CHUNK):
            out.write(chunk)


if __name__ == "__main__":
    verb, *args = sys.argv[1:]
    {"put": put, "get": get}[verb](*args)
