"""SMB2 WRITE requests built here, signed or encrypted, and sent without copying the data.

smbprotocol packs a WRITE by concatenating bytes: the request, the header
around it, the signature spliced into the header, the header with a zeroed
signature to sign, and the NetBIOS length in front; each is a fresh copy of
the whole payload (measured: five copies of every MiB, which cost more than
the signing itself). Here the 112 bytes of header and WRITE fields are packed
on their own, the signature (or the encryption) is computed over them and
the payload in turn, and the two pieces go to the socket in one ``sendmsg``:
the payload is never copied in Python when signed, and only into a reused
buffer (by the cipher) when encrypted with AES-GCM.

Everything else stays smbprotocol's: the credits and message ids (its
sequence window, under its lock), the request it waits on (registered in its
table before the bytes go out, so that its receiving thread finds it), the
answer (its thread checks the signature or decrypts it), and every other
request. The layouts are MS-SMB2 2.2.1.2 (header), 2.2.21 (WRITE) and 2.2.41
(TRANSFORM_HEADER); the signatures and ciphers are the ones smbprotocol's
``Connection._generate_signature`` and ``_encrypt`` use, chosen the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Any

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from smbprotocol.connection import Ciphers, Connection, Dialects, Request, SigningAlgorithms
from smbprotocol.header import Commands, Smb2Flags, SMB2HeaderRequest
from smbprotocol.open import Open, SMB2WriteRequest, SMB2WriteResponse
from smbprotocol.structure import Structure

from offsite_cifs.smb import SmbConnection

HEADER = struct.Struct("<4sHHHHHHIIQIIQ16s")  # MS-SMB2 2.2.1.2, 64 bytes
WRITE = struct.Struct("<HHIQ16sIIHHI")  # MS-SMB2 2.2.21 up to the data, 48 bytes
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


class WireWriter:
    """Sends WRITE requests for one open file on one connection.

    :meth:`send` returns smbprotocol's Request for the answer, which
    :meth:`written` turns into the count the server wrote.
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
            self._out = bytearray(HEAD_SIZE + buffer_size + 16)
        elif session.signing_required and session.signing_key:
            self._key = session.signing_key
            self._flags |= int(Smb2Flags.SMB2_FLAGS_SIGNED)
            self._sign_with = self.signing(connection)

    @staticmethod
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

    @property
    def protection(self) -> str:
        """How the requests are protected: ``AES-GMAC``, ``AES-128-GCM`` … or ``none``."""
        if self._seal_with:
            return f"{self._seal_with.upper()} encryption"
        return f"{self._sign_with.upper()} signing" if self._sign_with else "none"

    # -- protection -------------------------------------------------------------

    def _signature(self, head: bytearray, data: list[Any], message_id: int) -> bytes:
        if self._sign_with == "gmac":
            # The nonce is the message id and "a request, not a cancel" (MS-SMB2 3.1.4.1).
            nonce = message_id.to_bytes(8, "little") + b"\x00\x00\x00\x00"
            gmac = Cipher(algorithms.AES(self._key), modes.GCM(nonce)).encryptor()
            gmac.authenticate_additional_data(head)
            for piece in data:
                gmac.authenticate_additional_data(piece)
            gmac.finalize()
            return gmac.tag
        if self._sign_with == "cmac":
            mac = cmac.CMAC(algorithms.AES(self._key))
            mac.update(head)
            for piece in data:
                mac.update(piece)
            return mac.finalize()
        digest = hmac.new(self._key, head, hashlib.sha256)
        for piece in data:
            digest.update(piece)
        return digest.digest()[:16]

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
        connection = self._connection
        with connection.sequence_lock:
            window = connection.sequence_window
            if credit_charge > window["high"] - window["low"]:
                raise RuntimeError(f"a write needs {credit_charge} credits but only "
                                   f"{window['high'] - window['low']} are in hand")
            message_id = window["low"]
            window["low"] += credit_charge
        head = pack_head(message_id=message_id, session_id=self._session_id,
                         tree_id=self._tree_id, credit_charge=credit_charge,
                         credit_request=credit_request, flags=self._flags,
                         file_id=self._file_id, offset=offset, length=length)
        if self._seal_with:
            parts = self._seal(head, data, length)
        else:
            if self._sign_with:
                head[48:64] = self._signature(head, data, message_id)
            parts = [NBSS.pack(len(head) + length) + head, *data]
        # What smbprotocol's thread looks the answer up by; registered before
        # the bytes go out, or a quick answer would find no request.
        header = SMB2HeaderRequest()
        header["command"] = Commands.SMB2_WRITE
        header["message_id"] = message_id
        header["credit_charge"] = credit_charge
        header["session_id"] = self._session_id
        header["tree_id"] = self._tree_id
        request = Request(header, SMB2WriteRequest, connection, session_id=self._session_id)
        connection.outstanding_requests[message_id] = request
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


__all__ = ["HEAD_SIZE", "WireWriter", "pack_head"]
