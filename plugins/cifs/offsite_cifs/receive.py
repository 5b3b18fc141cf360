"""SMB2 answers taken off the socket with fewer copies; READ data with none.

smbprotocol's receiving thread copies every answer several times before a
READ's data reaches the caller: the socket's pieces into a buffer, the
buffer into bytes, the data out of the header, the whole header packed
again (and twice more with its signature zeroed) to check the signature,
and the data out of the READ answer (measured: a 1 GiB get took 2.4 to 3.3
times smbclient's time, most of it in those copies). Here, for one
connection:

- :class:`ReceivingTcp` takes an answer off the socket in one ``recv``
  (``MSG_WAITALL``: the kernel copies it once, into the bytes returned);
- an answer to a READ that :class:`Answers` expects (one sent by
  :meth:`offsite_cifs.wire.Wire.read`), signed and successful, is
  taken in two parts: the 80 bytes of header and READ fields, and the data,
  which becomes the bytes object the caller gets. The signature is checked
  over both parts as received. smbprotocol gets the 80 bytes, for its
  credits and its waiting request; :meth:`Answers.data` hands the data out;
- such an answer sealed with AES-GCM (SMB3 encryption) is decrypted here
  in two parts the same way, the head first, to see what it is, then the
  data into the bytes handed out; nothing is kept until the tag is checked.

Every other answer (an interim STATUS_PENDING, an error, a compound one,
one sealed with AES-CCM, anything not expected) is smbprotocol's, whole,
to check, decrypt and decode as before. A signature or a tag that does not
match is left to smbprotocol's own check, with the whole answer, which
raises its own error (:mod:`offsite_cifs.errors` says what it means). The
layouts are MS-SMB2 2.2.1.2 (header), 2.2.20 (READ response) and 2.2.41
(TRANSFORM_HEADER).
"""

from __future__ import annotations

import hmac
import select
import socket
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from smbprotocol.connection import Ciphers, Connection, Dialects
from smbprotocol.header import Commands, Smb2Flags
from smbprotocol.transport import Tcp

from offsite_cifs.wire import NBSS, TRANSFORM, ZERO_SIGNATURE, gmac_nonce, signature, signing

#: The header's fields an answer is recognised by: protocol id, status,
#: command, flags, next command, message id (MS-SMB2 2.2.1.2).
ANSWER = struct.Struct("<4s4xIH2xIIQ")
#: MS-SMB2 2.2.20 up to the data: structure size, data offset, data length.
READ_ANSWER = struct.Struct("<HB1xI")
HEADER_SIZE = 64
#: The header and the READ answer's fixed part: where its data starts.
READ_HEAD = HEADER_SIZE + 16
SIGNED = int(Smb2Flags.SMB2_FLAGS_SIGNED)
RESPONSE = int(Smb2Flags.SMB2_FLAGS_SERVER_TO_REDIR)


class ReceivingTcp(Tcp):
    """smbprotocol's Direct TCP transport, with :meth:`recv` in one copy.

    smbprotocol's socket is blocking. The wait for an answer to begin is
    smbprotocol's (a ``select`` of at most ``timeout`` seconds, then
    ``TimeoutError``, on which its thread sends an echo); the answer itself
    is then taken whole. A server that stops mid-answer is the caller's
    timeout to notice: the session's close shuts the socket down, which
    ends the ``recv``.
    """

    answers: Answers | None = None

    def recv(self, timeout: float) -> bytes:
        head = self._take(4, timeout)
        if len(head) < 4:
            return b""
        size = NBSS.unpack(head)[0]
        if size > self.MAX_SIZE:  # Direct TCP's length has 3 bytes (MS-SMB2 2.1)
            raise ConnectionError(f"the server announced an answer of {size} bytes, more"
                                  f" than SMB allows ({self.MAX_SIZE})")
        answers = self.answers
        if answers is not None and size > READ_HEAD and answers.expected(self._peek(), size):
            return self._read_answer(answers, size)
        message = self._take(size, None)
        if len(message) < size:
            return b""
        if answers is not None and message[:4] == b"\xfdSMB":
            return answers.unseal(message)
        return message

    def _read_answer(self, answers: Answers, size: int) -> bytes:
        """An expected READ answer: its head for smbprotocol, its data kept."""
        head = self._take(READ_HEAD, None)
        data = self._take(size - READ_HEAD, None)
        if len(head) + len(data) < size:
            return b""
        if answers.keep(head, data):
            return head
        return head + data  # smbprotocol's check says what is wrong with it

    def _peek(self) -> bytes:
        """What has arrived of the answer's first :data:`READ_HEAD` bytes, left
        in the socket."""
        with self._close_lock:
            if not self.connected:
                return b""
            try:
                return self._sock.recv(READ_HEAD, socket.MSG_PEEK)
            except OSError:
                return b""

    def _take(self, length: int, timeout: float | None) -> bytes:
        """``length`` bytes, or fewer if the connection closed meanwhile;
        with ``timeout``, wait at most that long for the first byte."""
        sock: socket.socket = self._sock
        pieces: list[bytes] = []
        got = 0
        while got < length:
            with self._close_lock:
                if not self.connected:
                    break
                if timeout is not None and not got:
                    ready = select.select([sock], [], [], max(timeout, 1))[0]
                    if not ready:
                        raise TimeoutError(f"recv idle for {max(timeout, 1):.1f}s")
                try:
                    piece = sock.recv(length - got, socket.MSG_WAITALL)
                except OSError:  # reset or shut down: as smbprotocol, the end
                    piece = b""
            if not piece:
                self.close()
                break
            pieces.append(piece)
            got += len(piece)
        # One piece is the usual case: handed on as it is, not copied.
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class Answers:
    """The READ answers of one connection: expected, checked, kept.

    :meth:`install` puts a :class:`ReceivingTcp` under the connection and
    this object's :meth:`verify` in front of its ``verify_signature``.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._verify_signature = connection.verify_signature
        self._expected: set[int] = set()
        self._kept: dict[int, bytes] = {}
        self._checked: int | None = None
        self._sign_with: str | None = None

    @classmethod
    def install(cls, connection: Connection) -> Answers:
        """Take over the receiving of ``connection``, just connected."""
        answers = cls(connection)
        transport = connection.transport
        if type(transport) is Tcp:
            # Its thread looks recv up afresh for every answer.
            transport.__class__ = ReceivingTcp
            transport.answers = answers
        connection.verify_signature = answers.verify  # type: ignore[method-assign]
        return answers

    # -- in the caller's thread ----------------------------------------------------

    def expect(self, message_id: int) -> None:
        """The READ ``message_id`` is about to go out; :meth:`data` takes its answer."""
        self._expected.add(message_id)

    def data(self, request: Any) -> bytes | memoryview:
        """The data of the READ answer to ``request``, already waited for:
        the bytes as received when kept, else a view of smbprotocol's
        decoding. Raises for an error status, as smbprotocol's receive does."""
        message_id = request.message["message_id"].get_value()
        self._expected.discard(message_id)
        response = self._connection.receive(request)
        kept = self._kept.pop(message_id, None)
        if kept is not None:
            return kept
        body = response["data"].get_value()
        _, offset, length = READ_ANSWER.unpack_from(body)
        start = offset - HEADER_SIZE  # the offset counts from the header's start
        if start < READ_HEAD - HEADER_SIZE or start + length > len(body):
            raise OSError(f"a READ answer's data ({length} bytes at {offset}) lies outside"
                          f" its {HEADER_SIZE + len(body)} bytes")
        return memoryview(body)[start:start + length]

    def forget(self) -> None:
        """Drop every answer kept (the connection is closing)."""
        self._kept.clear()
        self._expected.clear()

    # -- in smbprotocol's receiving thread ----------------------------------------------

    def expected(self, head: bytes, size: int, *, signed: bool = True) -> bool:
        """Whether the answer of ``size`` bytes beginning with ``head`` is a
        successful, single answer to an expected READ, signed (unless it
        came sealed), its data right after the fixed part and filling the rest."""
        if len(head) < READ_HEAD:
            return False
        magic, status, command, flags, next_command, message_id = ANSWER.unpack_from(head)
        must = SIGNED | RESPONSE if signed else RESPONSE
        if (magic != b"\xfeSMB" or command != Commands.SMB2_READ or status != 0
                or next_command != 0 or flags & must != must
                or message_id not in self._expected):
            return False
        _, offset, length = READ_ANSWER.unpack_from(head, HEADER_SIZE)
        return offset == READ_HEAD and length == size - READ_HEAD

    def keep(self, head: bytes, data: bytes) -> bool:
        """Check the signature of the answer ``head`` + ``data`` and keep its
        data; False (nothing kept) if the signature does not match."""
        message_id = ANSWER.unpack_from(head)[5]
        # The key of the session the request went out on, as smbprotocol takes it.
        request = self._connection.outstanding_requests.get(message_id)
        session = (None if request is None
                   else self._connection.session_table.get(request.session_id))
        if session is None or not session.signing_key:
            return False
        if self._sign_with is None:
            self._sign_with = signing(self._connection)
        view = memoryview(head)
        expected = signature(self._sign_with, session.signing_key,
                             [view[:48], ZERO_SIGNATURE, view[HEADER_SIZE:], data],
                             gmac_nonce(message_id, response=True))
        if not hmac.compare_digest(expected, view[48:HEADER_SIZE]):
            return False
        self._keep(message_id, data)
        return True

    def unseal(self, message: bytes) -> bytes:
        """A sealed answer (MS-SMB2 2.2.41): if it is an expected READ's,
        sealed with AES-GCM, its head decrypted (for smbprotocol) and its
        data decrypted into the bytes kept; else ``message`` as it came, for
        smbprotocol to decrypt (AES-CCM has no streaming form here, and a
        tag that does not match is smbprotocol's to report)."""
        if len(message) < TRANSFORM.size + READ_HEAD:
            return message
        _, tag, nonce, size, _, flags, session_id = TRANSFORM.unpack_from(message)
        connection = self._connection
        cipher = (connection.cipher_id if connection.dialect >= Dialects.SMB_3_1_1
                  else Ciphers.AES_128_CCM)
        session = connection.session_table.get(session_id)
        if (flags != 1 or size != len(message) - TRANSFORM.size
                or cipher not in (Ciphers.AES_128_GCM, Ciphers.AES_256_GCM)
                or session is None or not session.decryption_key):
            return message
        view = memoryview(message)[TRANSFORM.size:]
        cleartext = Cipher(algorithms.AES(session.decryption_key),
                           modes.GCM(nonce[:12], tag)).decryptor()
        cleartext.authenticate_additional_data(message[20:TRANSFORM.size])
        # GCM is a stream: the head comes out first, to be looked at; nothing
        # is kept (or trusted) until the tag is checked at the end.
        head = cleartext.update(view[:READ_HEAD])
        if not self.expected(head, size, signed=False):
            return message
        data = cleartext.update(view[READ_HEAD:])
        try:
            cleartext.finalize()
        except InvalidTag:
            return message
        self._keep(ANSWER.unpack_from(head)[5], data)
        return head

    def _keep(self, message_id: int, data: bytes) -> None:
        """Keep the checked ``data`` for :meth:`data`; :meth:`verify`, called
        next for the same answer, skips it."""
        self._kept[message_id] = data
        self._checked = message_id

    def verify(self, header: Any, session_id: int, force: bool = False) -> None:
        """smbprotocol's ``verify_signature(header, session_id)``: skipped for
        the answer :meth:`keep` has just checked, smbprotocol's otherwise."""
        if not force:  # forced: session setup's check, from the caller's thread
            checked, self._checked = self._checked, None
            if checked is not None and checked == header["message_id"].get_value():
                return
        self._verify_signature(header, session_id, force)


__all__ = ["Answers", "ReceivingTcp"]
