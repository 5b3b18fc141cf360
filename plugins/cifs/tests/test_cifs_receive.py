"""The READ answers taken off the socket by :mod:`offsite_cifs.receive`, against
the real smbd: handed out as received, every one checked; an answer damaged
on the way is refused, never handed out; anything not expected stays
smbprotocol's."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from smbprotocol.header import Commands, Smb2Flags

from offsite.errors import TargetError
from offsite.session import Transport
from offsite.testing.proxy import TcpProxy
from offsite.testing.sources import MiB, random_bytes
from offsite.transport import BytesSource, Endpoint
from offsite_cifs.errors import INTEGRITY_FIX
from offsite_cifs.receive import ANSWER, READ_HEAD, Answers, ReceivingTcp

SIGNED_ANSWER = int(Smb2Flags.SMB2_FLAGS_SIGNED | Smb2Flags.SMB2_FLAGS_SERVER_TO_REDIR)


def endpoint(smbd: Any, folder: str, port: int | None = None, share: str = "backup") -> Endpoint:
    url = smbd.url(folder, share=share)
    if port is not None:
        url = url.replace(f":{smbd.port}/", f":{port}/")
    return Endpoint.from_url(url, name="smb-test", credentials={"password": smbd.password})


def read_all(session: Any, name: str, into: bytearray) -> None:
    with session.get(name) as stream:
        while chunk := stream.read(3 * MiB + 5):
            into += chunk


@pytest.mark.parametrize("share", ["backup", "sealed"])
def test_a_get_hands_out_the_answers_as_received(smbd: Any, smb_folder: str, share: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data = random_bytes(21 * MiB + 77, seed=11)
    kept: list[int] = []
    keep, unseal = Answers.keep, Answers.unseal

    def keeping(self: Answers, head: bytes, body: bytes) -> bool:
        ok = keep(self, head, body)
        kept.append(len(body) if ok else -1)
        return ok

    def unsealing(self: Answers, message: bytes) -> bytes:
        head = unseal(self, message)
        if len(message) > 1 << 20:  # a READ's answer, not a small one
            kept.append(len(message) - 52 - READ_HEAD if len(head) == READ_HEAD else -1)
        return head

    monkeypatch.setattr(Answers, "keep", keeping)
    monkeypatch.setattr(Answers, "unseal", unsealing)
    target = endpoint(smbd, smb_folder, share=share)
    with Transport.for_endpoint(target).connect(target) as session:
        assert type(session.conn.connection.transport) is ReceivingTcp
        session.put("x.bin", BytesSource(data))
        got = bytearray()
        read_all(session, "x.bin", got)
    assert got == data
    # Every large READ answer was taken here (checked, or decrypted with its
    # tag checked), none left to smbprotocol's copies; the last, short one
    # too when it is sealed with one of the large ones' sizes.
    assert kept and -1 not in kept
    assert len(data) - (1 << 20) <= sum(kept) <= len(data)


@pytest.mark.parametrize("share", ["backup", "sealed"])
def test_an_answer_damaged_on_the_way_is_refused_not_handed_out(smbd: Any, smb_folder: str,
                                                                share: str) -> None:
    data = random_bytes(16 * MiB, seed=12)
    direct = endpoint(smbd, smb_folder, share=share)
    with Transport.for_endpoint(direct).connect(direct) as session:
        session.put("x.bin", BytesSource(data))
    with TcpProxy(smbd.host, smbd.port) as proxy:
        via = endpoint(smbd, smb_folder, port=proxy.port, share=share)
        with Transport.for_endpoint(via).connect(via) as session:
            # A bit flipped 6 MiB into what the server sends from now on:
            # inside a READ answer's data.
            proxy.corrupt(6 * MiB)
            got = bytearray()
            with pytest.raises(TargetError) as caught:
                read_all(session, "x.bin", got)
    error = caught.value
    assert "integrity check" in str(error) and error.retryable
    assert ("signature" if share == "backup" else "encryption tag") in str(error)
    assert error.fix == INTEGRITY_FIX and smbd.password not in str(error)
    # What was handed out before the damage is the file's; the damage never is.
    assert len(got) < 6 * MiB
    assert got == data[:len(got)]


def _head(*, magic: bytes = b"\xfeSMB", status: int = 0, command: int = Commands.SMB2_READ,
          flags: int = SIGNED_ANSWER, next_command: int = 0, message_id: int = 7,
          offset: int = READ_HEAD, length: int = 100) -> bytes:
    head = bytearray(READ_HEAD)
    struct.pack_into("<4s", head, 0, magic)
    struct.pack_into("<I", head, 8, status)
    struct.pack_into("<H", head, 12, command)
    struct.pack_into("<IIQ", head, 16, flags, next_command, message_id)
    struct.pack_into("<HBxI", head, 64, 17, offset, length)
    assert ANSWER.unpack_from(head)[5] == message_id
    return bytes(head)


@pytest.mark.parametrize(("change", "taken"), [
    ({}, True),
    ({"message_id": 8}, False),  # not a READ sent through the wire
    ({"status": 0x00000103}, False),  # STATUS_PENDING: an interim answer
    ({"status": 0xC0000011}, False),  # STATUS_END_OF_FILE: an error
    ({"command": Commands.SMB2_WRITE}, False),
    ({"flags": int(Smb2Flags.SMB2_FLAGS_SERVER_TO_REDIR)}, False),  # not signed
    ({"magic": b"\xfdSMB"}, False),  # encrypted (a transform)
    ({"next_command": 128}, False),  # compound
    ({"offset": READ_HEAD + 8}, False),  # padding before the data
    ({"length": 99}, False),  # something after the data
])
def test_only_a_plain_signed_answer_to_an_expected_read_is_taken(change: dict[str, Any],
                                                                 taken: bool) -> None:
    answers = Answers.__new__(Answers)
    answers._expected = {7}
    assert answers.expected(_head(**change), READ_HEAD + 100) is taken
    assert answers.expected(_head()[:READ_HEAD - 1], READ_HEAD + 100) is False
