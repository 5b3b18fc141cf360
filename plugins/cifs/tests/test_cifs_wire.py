"""The hand-built WRITE requests (:mod:`offsite_cifs.wire`): the bytes are
smbprotocol's, the signatures are smbprotocol's, and the real smbd takes
them with every signing algorithm and cipher both sides offer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from smbprotocol.connection import Ciphers, Connection, Dialects, SigningAlgorithms
from smbprotocol.header import Commands, Smb2Flags, SMB2HeaderRequest
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FilePipePrinterAccessMask,
    SMB2WriteRequest,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from offsite.transport import Endpoint
from offsite_cifs.pipeline import Reader, Writer
from offsite_cifs.receive import Answers
from offsite_cifs.smb import SmbConnection
from offsite_cifs.testserver import SEALED_SHARE, SHARE
from offsite_cifs.wire import gmac_nonce, pack_head, signature, signing


def test_the_head_is_what_smbprotocol_packs() -> None:
    data = os.urandom(1000)
    write = SMB2WriteRequest()
    write["length"] = len(data)
    write["offset"] = 123456789012
    write["file_id"] = bytes(range(16))
    write["buffer"] = data
    header = SMB2HeaderRequest()
    header["credit_charge"] = 3
    header["command"] = Commands.SMB2_WRITE
    header["credit_request"] = 70
    header["message_id"] = 4321
    header["session_id"] = 0x1122334455667788
    header["tree_id"] = 99
    header["flags"].set_flag(Smb2Flags.SMB2_FLAGS_SIGNED)
    header["data"] = write.pack()
    head = pack_head(message_id=4321, session_id=0x1122334455667788, tree_id=99,
                     credit_charge=3, credit_request=70,
                     flags=Smb2Flags.SMB2_FLAGS_SIGNED, file_id=bytes(range(16)),
                     offset=123456789012, length=len(data))
    assert bytes(head) + data == header.pack()


@pytest.mark.parametrize(("dialect", "algorithm"), [
    (Dialects.SMB_3_1_1, SigningAlgorithms.AES_GMAC),
    (Dialects.SMB_3_1_1, SigningAlgorithms.AES_CMAC),
    (Dialects.SMB_3_0_2, None),  # AES-CMAC, the 3.0 dialects' only one
    (Dialects.SMB_2_1_0, None),  # HMAC-SHA256
])
def test_the_signature_is_smbprotocols(dialect: int, algorithm: int | None) -> None:
    # smbprotocol's own signing, on an unconnected Connection, is the oracle.
    connection = Connection(uuid.uuid4(), "127.0.0.1", 1)
    connection.dialect, connection.signing_algorithm_id = dialect, algorithm
    key, data = os.urandom(16), os.urandom(70000)
    head = pack_head(message_id=77, session_id=5, tree_id=6, credit_charge=2, credit_request=2,
                     flags=Smb2Flags.SMB2_FLAGS_SIGNED, file_id=b"f" * 16, offset=0,
                     length=len(data))
    expected = connection._generate_signature(bytes(head) + data, key, 77, False,
                                              Commands.SMB2_WRITE)
    assert signature(signing(connection), key, [head, memoryview(data)[:5000], data[5000:]],
                     gmac_nonce(77, response=False)) == expected
    # An answer's nonce differs (GMAC), so the same bytes signed as an answer do not match.
    answer = connection._generate_signature(bytes(head) + data, key, 77, True, Commands.SMB2_READ)
    assert signature(signing(connection), key, [head, data],
                     gmac_nonce(77, response=True)) == answer


def _connect(smbd: Any, share: str, dialect: int, signing: list[int],
             ciphers: list[int]) -> SmbConnection:
    connection = Connection(uuid.uuid4(), smbd.host, smbd.port, require_signing=True)
    connection.connect(dialect=dialect, timeout=10, preferred_signing_algos=signing,
                       preferred_encryption_algos=ciphers)
    answers = Answers.install(connection)  # as the transport's connect does
    session = Session(connection, smbd.user, smbd.password, require_encryption=False,
                      auth_protocol="ntlm")
    session.connect()
    tree = TreeConnect(session, rf"\\{smbd.host}\{share}")
    tree.connect()
    connection.echo(sid=session.session_id, timeout=10, credit_request=256)
    endpoint = Endpoint.from_url(smbd.url("", share=share))
    return SmbConnection(endpoint, connection, session, tree, "", 10.0, answers=answers)


@pytest.fixture
def name(smbd: Any) -> Iterator[str]:
    name = f"wire-{uuid.uuid4().hex}.bin"
    yield name
    (smbd.root / name).unlink(missing_ok=True)


@pytest.mark.parametrize(("share", "dialect", "signing", "ciphers", "protection"), [
    (SHARE, Dialects.SMB_3_1_1, [SigningAlgorithms.AES_GMAC], [Ciphers.AES_128_GCM],
     "GMAC signing"),
    (SHARE, Dialects.SMB_3_1_1, [SigningAlgorithms.AES_CMAC], [Ciphers.AES_128_GCM],
     "CMAC signing"),
    (SHARE, Dialects.SMB_3_0_2, [SigningAlgorithms.AES_CMAC], [Ciphers.AES_128_CCM],
     "CMAC signing"),
    (SEALED_SHARE, Dialects.SMB_3_1_1, [SigningAlgorithms.AES_GMAC], [Ciphers.AES_128_GCM],
     "GCM encryption"),
    (SEALED_SHARE, Dialects.SMB_3_1_1, [SigningAlgorithms.AES_GMAC], [Ciphers.AES_256_GCM],
     "GCM encryption"),
    (SEALED_SHARE, Dialects.SMB_3_1_1, [SigningAlgorithms.AES_GMAC], [Ciphers.AES_128_CCM],
     "CCM encryption"),
    (SEALED_SHARE, Dialects.SMB_3_0_2, [SigningAlgorithms.AES_CMAC], [Ciphers.AES_128_CCM],
     "CCM encryption"),
])
def test_the_server_takes_every_protection(smbd: Any, name: str, share: str, dialect: int,
                                           signing: list[int], ciphers: list[int],
                                           protection: str) -> None:
    conn = _connect(smbd, share, dialect, signing, ciphers)
    try:
        handle = conn.open(name, FilePipePrinterAccessMask.FILE_WRITE_DATA,
                           CreateDisposition.FILE_OVERWRITE_IF,
                           CreateOptions.FILE_NON_DIRECTORY_FILE)
        writer = Writer(conn, handle, 0, 256 << 10, 1 << 20)
        assert writer._wire.protection == protection
        # Pieces that are not multiples of a cipher block, nor of a credit.
        data = os.urandom(3 * (256 << 10) + 4097)
        writer.write(data[:100001])
        writer.write(memoryview(data)[100001:])
        writer.finish()
        assert writer.answered == len(data)
        conn.close_handle(handle)
        # Read back through offsite_cifs.receive: signed answers checked with
        # each algorithm, sealed ones decrypted (GCM) or left to smbprotocol (CCM).
        handle = conn.open(name, FilePipePrinterAccessMask.FILE_READ_DATA,
                           CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)
        reader = Reader(conn, handle, 0, int(handle.end_of_file), 256 << 10, 1 << 20)
        answers: Any = conn.answers
        taken: list[bool] = []
        keep, unseal = answers.keep, answers.unseal

        def keeping(head: bytes, body: bytes) -> bool:
            taken.append(keep(head, body))
            return taken[-1]

        def unsealing(message: bytes) -> bytes:
            out = unseal(message)
            if len(message) > 4000:  # a READ's answer, not a CREATE's or a CLOSE's
                taken.append(len(out) < len(message))
            return out

        answers.keep, answers.unseal = keeping, unsealing
        back = bytearray()
        while piece := reader.read(100_000):
            back += piece
        reader.close()
        assert back == data
        # Taken here, not left to smbprotocol: all but AES-CCM's sealed answers.
        assert taken == [protection != "CCM encryption"] * 4
    finally:
        conn.close()
    assert (smbd.root / name).read_bytes() == data
