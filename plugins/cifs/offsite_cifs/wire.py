"""SMB2 WRITE and READ requests built here, signed or encrypted, and sent without copying the data.

smbprotocol packs a WRITE by concatenating bytes: the request, the header
around it, the signature spliced into the header, the header with a zeroed
signature to sign, and the NetBIOS length in front; each is a fresh copy of
the whole payload (measured: five copies of every MiB, which cost more than
the signing itself). Here the 112 bytes of header and WRITE fields are packed
on their own, the signature (or the encryption) is computed over them and
the payload in turn, and the two pieces go to the socket in one ``sendmsg``:
the payload is never copied in Python when signed, and only into a reused
buffer (by the cipher) when encrypted with AES-GCM. READ requests are built
the same way, so that their message id is known before they go out: the
answer's data is then taken off the socket by :mod:`offsite_cifs.receive`.

Everything else stays smbprotocol's: the credits and message ids (its
sequence window, under its lock), the request it waits on (registered in its
table before the bytes go out, so that its receiving thread finds it), the
answer (its thread checks the signature or decrypts it, but for the data
of READ answers: :mod:`offsite_cifs.receive`), and every other request.
The layouts are MS-SMB2 2.2.1.2 (header), 2.2.19 (READ), 2.2.21 (WRITE)
and 2.2.41 (TRANSFORM_HEADER); the signatures and ciphers are the ones
smbprotocol's ``Connection._generate_signature`` and ``_encrypt`` use,
chosen the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from smbprotocol.connection import Ciphers, Connection, Dialects, Request, SigningAlgorithms
from smbprotocol.header import Commands, Smb2Flags, SMB2HeaderRequest
from smbprotocol.open import Open, SMB2ReadRequest, SMB2WriteRequest, SMB2WriteResponse
from smbprotocol.structure import Structure

from offsite_cifs.smb import SmbConnection

HEADER = struct.Struct("<4sHHHHHHIIQIIQ16s")  # MS-SMB2 2.2.1.2, 64 bytes
WRITE = struct.Struct("<HHIQ16sIIHHI")  # MS-SMB2 2.2.21 up to the data, 48 bytes
READ = struct.Struct("<HBBIQ16sIIIHHB")  # MS-SMB2 2.2.19 with its one-byte buffer, 49 bytes
TRANSFORM = struct.Struct("<4s16s16sIHHQ")  # MS-SMB2 2.2.41, 52 bytes
NBSS = struct.Struct(">I")  # Direct TCP: the length of what follows
HEAD_SIZE = HEADER.size + WRITE.size
ZERO_SIGNATURE = b"\x00" * 16


def pack_head(*, message_id: int, session_id: int, tree_id: int, credit_charge: int,
              credit_request: int, flags: int, file_id: bytes, offset: int,
              length: int) -> bytearray:
    """The header and WRITE fields in front of ``length`` bytes of data, signature zero."""
    head = bytearray(HEAD_SIZE)
    HEADER.pack_into(head, 0, b"\xfeSMB", 64, credit_charge, 0, 0, Commands.SMB2_WRITE,
                     credit_request, flags, 0, message_id, 0, tree_id, session_id,
                     ZERO_SIGNATURE)
    # DataOffset counts from the header's start; no channel, no flags.
    WRITE.pack_into(head, HEADER.size, 49, HEAD_SIZE, length, offset, file_id, 0, 0, 0, 0, 0)
    return head


def pack_read(*, message_id: int, session_id: int, tree_id: int, credit_charge: int,
              credit_request: int, flags: int, file_id: bytes, offset: int,
              length: int) -> bytearray:
    """A READ request of ``length`` bytes at ``offset``, signature zero."""
    head = bytearray(HEADER.size + READ.size)
    HEADER.pack_into(head, 0, b"\xfeSMB", 64, credit_charge, 0, 0, Commands.SMB2_READ,
                     credit_request, flags, 0, message_id, 0, tree_id, session_id,
                     ZERO_SIGNATURE)
    # Padding 0x50 asks for the data right after the answer's fixed part, as
    # smbprotocol asks; no flags, no minimum count, no channel.
    READ.pack_into(head, HEADER.size, 49, 0x50, 0, length, offset, file_id, 0, 0, 0, 0, 0, 0)
    return head


def signing(connection: Connection) -> str:
    """The signing algorithm of ``connection``: ``gmac``, ``cmac`` or ``hmac``
    (chosen as smbprotocol's ``_generate_signature`` chooses it)."""
    if connection.dialect >= Dialects.SMB_3_1_1 and connection.signing_algorithm_id is not None:
        algorithm = connection.signing_algorithm_id
    elif connection.dialect >= Dialects.SMB_3_0_0:
        algorithm = SigningAlgorithms.AES_CMAC
    else:
        algorithm = SigningAlgorithms.HMAC_SHA256
    return {SigningAlgorithms.AES_GMAC: "gmac",
            SigningAlgorithms.AES_CMAC: "cmac"}.get(algorithm, "hmac")


def gmac_nonce(message_id: int, *, response: bool) -> bytes:
    """AES-GMAC's nonce: the message id, and whether it is an answer (no
    cancel is ever signed here) (MS-SMB2 3.1.4.1)."""
    return message_id.to_bytes(8, "little") + (b"\x01" if response else b"\x00") + b"\x00" * 3


def signature(algorithm: str, key: bytes, pieces: list[Any], nonce: bytes) -> bytes:
    """The signature of a message given as ``pieces`` (bytes or views, read
    in turn, the signature field as zeros): ``algorithm`` from :func:`signing`,
    ``nonce`` from :func:`gmac_nonce` (used by AES-GMAC only)."""
    if algorithm == "gmac":
        gmac = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        for piece in pieces:
            gmac.authenticate_additional_data(piece)
        gmac.finalize()
        return gmac.tag
    if algorithm == "cmac":
        mac = cmac.CMAC(algorithms.AES(key))
        for piece in pieces:
            mac.update(piece)
        return mac.finalize()
    digest = hmac.new(key, b"", hashlib.sha256)
    for piece in pieces:
        digest.update(piece)
    return digest.digest()[:16]


class Wire:
    """Sends WRITE and READ requests for one open file on one connection.

    :meth:`send` (a WRITE) and :meth:`read` return smbprotocol's Request
    for the answer; :meth:`written` turns a WRITE's into the count the
    server wrote, :class:`offsite_cifs.receive.Answers` a READ's into its data.
    """

    def __init__(self, conn: SmbConnection, handle: Open, buffer_size: int) -> None:
        connection, session, tree = conn.connection, conn.session, conn.tree
        self._connection = connection
        self._session_id, self._tree_id = session.session_id, tree.tree_connect_id
        self._file_id = handle.file_id
        self._flags = int(Smb2Flags.SMB2_FLAGS_DFS_OPERATIONS) if tree.is_dfs_share else 0
        self._sign_with: str | None = None
        self._seal_with: str | None = None
        self._out = bytearray(0)
        if session.encrypt_data or tree.encrypt_data:
            # Sealed: the transform's AEAD tag vouches for the message, which
            # is not signed on top (smbprotocol does the same).
            self._key = session.encryption_key
            cipher = (connection.cipher_id if connection.dialect >= Dialects.SMB_3_1_1
                      else Ciphers.AES_128_CCM)
            self._seal_with = "gcm" if cipher in (Ciphers.AES_128_GCM,
                                                   Ciphers.AES_256_GCM) else "ccm"
            # AES-GCM encrypts into this (reused) buffer; the cipher wants a
            # block's worth of room past the data.
            self._out = bytearray(HEADER.size + max(WRITE.size, READ.size) + buffer_size + 16)
        elif session.signing_required and session.signing_key:
            self._key = session.signing_key
            self._flags |= int(Smb2Flags.SMB2_FLAGS_SIGNED)
            self._sign_with = signing(connection)

    @property
    def protection(self) -> str:
        """How the requests are protected: ``AES-GMAC``, ``AES-128-GCM`` … or ``none``."""
        if self._seal_with:
            return f"{self._seal_with.upper()} encryption"
        return f"{self._sign_with.upper()} signing" if self._sign_with else "none"

    # -- protection -------------------------------------------------------------

    def _seal(self, head: bytearray, data: list[Any], length: int) -> list[Any]:
        size = len(head) + length
        transform = bytearray(TRANSFORM.size)
        if self._seal_with == "gcm":
            nonce = os.urandom(12)
            TRANSFORM.pack_into(transform, 0, b"\xfdSMB", ZERO_SIGNATURE, nonce + b"\x00" * 4,
                                size, 0, 1, self._session_id)
            enc = Cipher(algorithms.AES(self._key), modes.GCM(nonce)).encryptor()
            enc.authenticate_additional_data(bytes(transform[20:]))
            out = memoryview(self._out)
            n = enc.update_into(head, out)
            for piece in data:
                n += enc.update_into(piece, out[n:])
            enc.finalize()
            tag, body = enc.tag, out[:n]
        else:  # AES-CCM has no streaming form in cryptography: one copy
            nonce = os.urandom(11)
            TRANSFORM.pack_into(transform, 0, b"\xfdSMB", ZERO_SIGNATURE, nonce + b"\x00" * 5,
                                size, 0, 1, self._session_id)
            sealed = AESCCM(self._key).encrypt(nonce, b"".join([head, *data]),
                                               bytes(transform[20:]))
            tag, body = sealed[-16:], memoryview(sealed)[:-16]
        transform[4:20] = tag
        return [NBSS.pack(TRANSFORM.size + size) + transform, body]

    # -- sending ------------------------------------------------------------------

    def send(self, data: list[Any], offset: int, credit_charge: int,
             credit_request: int) -> Request:
        """Send the pieces ``data`` (bytes or memoryviews), one after the
        other, to be written from ``offset`` on."""
        length = sum(len(piece) for piece in data)
        return self._send(Commands.SMB2_WRITE, SMB2WriteRequest, pack_head, offset, length,
                          data, credit_charge, credit_request)

    def read(self, offset: int, length: int, credit_charge: int, credit_request: int,
             expect: Callable[[int], None]) -> Request:
        """Send a READ of ``length`` bytes at ``offset``; ``expect(message_id)``
        is called before the request goes out (the answer may come at once)."""
        return self._send(Commands.SMB2_READ, SMB2ReadRequest, pack_read, offset, length, [],
                          credit_charge, credit_request, expect)

    def _send(self, command: int, message_type: type, pack: Callable[..., bytearray],
              offset: int, length: int, data: list[Any], credit_charge: int,
              credit_request: int, expect: Callable[[int], None] | None = None) -> Request:
        """Send the request ``pack`` (:func:`pack_head` or :func:`pack_read`)
        builds for ``length`` bytes at ``offset``, followed by ``data``."""
        connection = self._connection
        with connection.sequence_lock:
            window = connection.sequence_window
            if credit_charge > window["high"] - window["low"]:
                raise RuntimeError(f"a request needs {credit_charge} credits but only "
                                   f"{window['high'] - window['low']} are in hand")
            message_id = window["low"]
            window["low"] += credit_charge
        head = pack(message_id=message_id, session_id=self._session_id, tree_id=self._tree_id,
                    credit_charge=credit_charge, credit_request=credit_request,
                    flags=self._flags, file_id=self._file_id, offset=offset, length=length)
        sent = sum(len(piece) for piece in data)
        if self._seal_with:
            parts = self._seal(head, data, sent)
        else:
            if self._sign_with:
                head[48:64] = signature(self._sign_with, self._key, [head, *data],
                                        gmac_nonce(message_id, response=False))
            parts = [NBSS.pack(len(head) + sent) + head, *data]
        # What smbprotocol's thread looks the answer up by; registered before
        # the bytes go out, or a quick answer would find no request.
        header = SMB2HeaderRequest()
        header["command"] = command
        header["message_id"] = message_id
        header["credit_charge"] = credit_charge
        header["session_id"] = self._session_id
        header["tree_id"] = self._tree_id
        request = Request(header, message_type, connection, session_id=self._session_id)
        connection.outstanding_requests[message_id] = request
        if expect is not None:
            expect(message_id)
        try:
            connection._check_worker_running()  # raises what its send would
            transport = connection.transport
            with transport._sock_lock:  # one message at a time on the socket
                _sendall(transport._sock, parts)
        except BaseException:
            connection.outstanding_requests.pop(message_id, None)
            raise
        return request

    def written(self, request: Request) -> int:
        """The count of bytes the server wrote, from the answer already received."""
        response = self._connection.receive(request)
        answer: Structure = SMB2WriteResponse()
        answer.unpack(response["data"].get_value())
        return int(answer["count"].get_value())


def _sendall(sock: Any, parts: list[Any]) -> None:
    """``sendall`` for several buffers: what ``sendmsg`` did not take, again."""
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        sent = sock.sendmsg(views)
        while sent:
            if sent >= len(views[0]):
                sent -= len(views.pop(0))
            else:
                views[0] = views[0][sent:]
                sent = 0
        while views and not len(views[0]):
            views.pop(0)


__all__ = ["HEAD_SIZE", "Wire", "gmac_nonce", "pack_head", "pack_read", "signature",
           "signing"]
