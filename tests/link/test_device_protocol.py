"""The device side fed raw frames: bad input on the wire gives clear answers and applies
nothing. (Host and device objects back to back, no line model.)"""

from __future__ import annotations

import hashlib
import random

import pytest
from simkit import make_set, make_store

from provision.bundle import format as bundle_format
from provision.bundle.model import SlotType
from provision.link import framing
from provision.link import messages as m
from provision.link.host import HostLink, device_error
from provision.sim.native import NativeDevice
from provision.sim.serve import SimContext


class Pair:
    """A NativeDevice and a HostLink wired back to back."""

    def __init__(self, **options: str) -> None:
        self.store = make_store(make_set(random.Random(5), (1,)))
        self.before = self.store.entries()
        self.device = NativeDevice(SimContext("native", self.store, self.store.profile, options))
        self.host = HostLink()

    def raw(self, data: bytes) -> list[m.Frame]:
        return self.host.receive_data(self.device.receive_data(data))

    def send(self, msg: m.Message, seq: int | None = None) -> list[m.Frame]:
        seq = self.host.next_seq() if seq is None else seq
        return self.raw(framing.pack(m.encode(msg, seq)))

    def one(self, msg: m.Message, seq: int | None = None) -> m.Message:
        (frame,) = self.send(msg, seq)
        return frame.message


def bundle(tags=(2,), seed=1) -> bytes:
    return bundle_format.encode(make_set(random.Random(seed), tags))


def begin(pair: Pair, data: bytes, tid: int = 9, chunk: int = 100) -> m.Message:
    return pair.one(m.Begin(tid, len(data), chunk, hashlib.sha256(data).digest()))


def send_all(pair: Pair, data: bytes, tid: int = 9, chunk: int = 100) -> None:
    for off in range(0, len(data), chunk):
        assert isinstance(pair.one(m.Data(tid, off, data[off : off + chunk])), m.Ack)


def test_full_transfer_commits() -> None:
    p, data = Pair(), bundle()
    assert begin(p, data) == m.Ack(9, 0, 0)
    send_all(p, data)
    reply = p.one(m.Commit(9))
    assert isinstance(reply, m.Committed) and reply.slot_count == 3
    assert {k for k in p.store.entries()} == {k for k in p.before} | {
        (2, t) for t in (SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY)
    }


def test_garbage_gets_bad_frame_nak_and_then_hello_works() -> None:
    p = Pair()
    (nak,) = p.raw(b"\x17\x42\x99noise\x00")
    assert nak.seq == 0 and nak.message == m.Nak(0, 0, m.NakReason.BAD_FRAME)
    assert isinstance(p.one(m.Hello(1, 512)), m.HelloInfo)


def test_oversized_frame_is_refused_without_buffering_it() -> None:
    p = Pair()
    (nak,) = p.raw(b"\x01" * 50_000 + b"\x00")
    assert nak.message == m.Nak(0, 0, m.NakReason.BAD_FRAME)
    assert len(p.device.protocol.decoder._buf) == 0


def test_data_for_unknown_transfer() -> None:
    p = Pair()
    reply = p.one(m.Data(77, 0, b"x" * 10))
    assert reply.code == m.ErrorCode.NO_TRANSFER and reply.request == m.MsgType.DATA
    assert "no such transfer" in device_error(reply).message
    assert isinstance(p.one(m.Commit(77)), m.Error)
    assert p.store.entries() == p.before


def test_out_of_window_and_misaligned_offsets_are_nakked() -> None:
    p, data = Pair(), bundle()
    begin(p, data, chunk=20)
    window = p.store.profile.window
    assert p.one(m.Data(9, 20 * window, data[20 * window : 20 * window + 20])) == m.Nak(
        9, 0, m.NakReason.OUT_OF_WINDOW
    )
    assert p.one(m.Data(9, 7, data[7:27])) == m.Nak(9, 0, m.NakReason.BAD_OFFSET)
    assert p.one(m.Data(9, 0, data[:19])) == m.Nak(9, 0, m.NakReason.BAD_OFFSET)
    assert p.one(m.Data(9, len(data) + 20, b"x")) == m.Nak(9, 0, m.NakReason.BAD_OFFSET)


def test_selective_ack_reports_held_chunks_above_a_gap() -> None:
    p, data = Pair(), bundle()
    begin(p, data, chunk=20)
    assert p.one(m.Data(9, 40, data[40:60])) == m.Ack(9, 0, 0b10)
    assert p.one(m.Data(9, 0, data[0:20])) == m.Ack(9, 20, 0b1)
    assert p.one(m.Data(9, 20, data[20:40])) == m.Ack(9, 60, 0)


def test_commit_before_all_bytes_is_incomplete_and_keeps_the_transfer() -> None:
    p, data = Pair(), bundle()
    begin(p, data)
    p.one(m.Data(9, 0, data[:100]))
    reply = p.one(m.Commit(9))
    assert reply.code == m.ErrorCode.INCOMPLETE and "100 of" in reply.detail
    send_all(p, data)
    assert isinstance(p.one(m.Commit(9)), m.Committed)


def test_digest_mismatch_applies_nothing() -> None:
    p, data = Pair(), bundle()
    p.one(m.Begin(9, len(data), 100, bytes(32)))
    send_all(p, data)
    assert p.one(m.Commit(9)).code == m.ErrorCode.DIGEST_MISMATCH
    assert p.store.entries() == p.before


def test_corrupted_bundle_with_matching_transfer_digest_is_rejected() -> None:
    p = Pair()
    data = bytearray(bundle())
    data[30] ^= 1
    data = bytes(data)
    begin(p, data)
    send_all(p, data)
    reply = p.one(m.Commit(9))
    assert reply.code == m.ErrorCode.BAD_BUNDLE
    assert p.store.entries() == p.before


def test_too_large_bundle_is_refused_at_begin() -> None:
    p = Pair()
    reply = p.one(m.Begin(9, 10**7, 100, bytes(32)))
    assert reply.code == m.ErrorCode.TOO_LARGE


def test_store_limits_refuse_the_whole_set() -> None:
    p = Pair()
    tags = tuple(range(10, 10 + p.store.profile.max_tags + 1))
    data = bundle(tags)
    begin(p, data, chunk=1000)
    send_all(p, data, chunk=1000)
    assert p.one(m.Commit(9)).code == m.ErrorCode.NO_SPACE
    assert p.store.entries() == p.before


def test_repeated_request_is_answered_from_cache_not_run_again() -> None:
    p, data = Pair(), bundle()
    begin(p, data)
    send_all(p, data)
    first = p.one(m.Commit(9), seq=500)
    sequence = p.store.sequence
    assert p.one(m.Commit(9), seq=500) == first
    assert p.store.sequence == sequence  # no second flash commit
    assert p.one(m.Commit(9), seq=501).code == m.ErrorCode.NO_TRANSFER


def test_begin_again_resumes() -> None:
    p, data = Pair(), bundle()
    begin(p, data)
    p.one(m.Data(9, 0, data[:100]))
    assert begin(p, data) == m.Ack(9, 100, 0)


def test_delete_all_needs_the_guard_and_secrets_cannot_be_read() -> None:
    p = Pair()
    assert p.one(m.Delete(m.DeleteScope.ALL, 0, 0, 0)).code == m.ErrorCode.GUARD
    assert p.store.entries() == p.before
    assert p.one(m.Read(1, SlotType.CLIENT_KEY, 0, 100)).code == m.ErrorCode.FORBIDDEN
    assert p.one(m.Read(3, SlotType.ROOT_CA, 0, 100)).code == m.ErrorCode.NOT_FOUND
    assert isinstance(p.one(m.Delete(m.DeleteScope.ALL, 0, 0, m.DELETE_ALL_GUARD)), m.Ok)
    assert p.store.entries() == {}


def test_unknown_type_and_version_get_clear_errors() -> None:
    p = Pair()
    (reply,) = p.raw(framing.pack(b"\x01\x40\x05\x00\x00\x00"))
    assert reply.seq == 5 and reply.message.code == m.ErrorCode.UNKNOWN_MESSAGE
    (reply,) = p.raw(framing.pack(b"\x07\x01\x06\x00\x00\x00"))
    assert reply.message.code == m.ErrorCode.UNSUPPORTED_VERSION
    (reply,) = p.raw(framing.pack(b"\x01\x02\x07\x00\x01\x00\x00"))
    assert reply.message.code == m.ErrorCode.MALFORMED


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("signer") / "pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key, path


def test_signed_only_device_rejects_unsigned_and_accepts_signed(signer) -> None:
    from provision import packing as bundle_io

    key, path = signer
    p = Pair(signer=str(path))
    hello = p.one(m.Hello(1, 512))
    assert hello.features & m.Feature.SIGNED_ONLY
    creds = make_set(random.Random(2), (2,))
    unsigned = bundle_format.encode(creds)
    begin(p, unsigned)
    send_all(p, unsigned)
    assert p.one(m.Commit(9)).code == m.ErrorCode.BAD_SIGNATURE
    assert p.store.entries() == p.before
    signed, _ = bundle_io.pack_bytes(creds, signing_key=key)
    begin(p, signed, tid=10)
    send_all(p, signed, tid=10)
    assert isinstance(p.one(m.Commit(10)), m.Committed)


# -- Feature.LEAN (docs/protocol.md §3.1)


def big_bundle() -> bytes:
    return bundle_format.encode(make_set(random.Random(1), (2, 3, 4), size=2000))


def lean_begin(pair: Pair, data: bytes, tid: int = 9, chunk: int = 1500) -> m.Message:
    return pair.one(m.BeginLean(tid, len(data), chunk, hashlib.sha256(data).digest()[:4]))


def test_lean_transfer_takes_chunks_longer_than_max_payload_and_answers_at_seq_0() -> None:
    p, data = Pair(), big_bundle()
    chunk = p.store.profile.max_payload + 500  # a control frame could not carry it
    assert len(data) > chunk
    assert lean_begin(p, data, chunk=chunk) == m.Ack(9, 0, 0)
    for index, off in enumerate(range(0, len(data), chunk)):
        (frame,) = p.send(m.DataLean(9, index, data[off : off + chunk]))
        assert frame.seq == 0 and isinstance(frame.message, m.Ack)
    assert frame.message.cumulative == len(data)
    reply = p.one(m.Commit(9))
    assert isinstance(reply, m.Committed) and reply.slot_count == len(
        bundle_format.decode(data).credentials
    )


def test_lean_begin_again_resumes_and_its_digest_names_the_bundle() -> None:
    p, data = Pair(), big_bundle()
    lean_begin(p, data, chunk=500)
    p.send(m.DataLean(9, 0, data[:500]))
    assert lean_begin(p, data, chunk=500) == m.Ack(9, 500, 0)  # resumed
    other = bytes([data[0] ^ 1]) + data[1:]
    assert lean_begin(p, other, chunk=500) == m.Ack(9, 0, 0)  # another bundle: restarted


def test_lean_commit_checks_the_four_digest_bytes_and_the_bundle_itself() -> None:
    p, data = Pair(), bundle()
    assert p.one(m.BeginLean(9, len(data), 4096, b"\x00" * 4)) == m.Ack(9, 0, 0)
    p.send(m.DataLean(9, 0, data))
    reply = p.one(m.Commit(9))
    assert isinstance(reply, m.Error) and reply.code == m.ErrorCode.DIGEST_MISMATCH
    assert p.store.entries() == p.before


def test_data_of_the_other_kind_is_no_transfer_and_lean_data_has_no_header() -> None:
    p, data = Pair(), bundle()
    (frame,) = p.send(m.DataLean(9, 0, data[:100]))
    assert frame.seq == 0 and frame.message.code == m.ErrorCode.NO_TRANSFER
    assert frame.message.request == m.MsgType.DATA_LEAN
    lean_begin(p, data, chunk=500)
    reply = p.one(m.Data(9, 0, data[:500]))
    assert isinstance(reply, m.Error) and reply.code == m.ErrorCode.NO_TRANSFER
    # 0x0D behind a normal header is not a DATA_LEAN.
    body = (
        m.Header.build({"version": 1, "type": 0x0D, "seq": 5, "length": 5}) + b"\x09\x00\x00\x00x"
    )
    (frame,) = p.raw(framing.pack(body))
    assert frame.message.code == m.ErrorCode.MALFORMED


def test_a_device_without_lean_refuses_lean_frames_and_changes_nothing() -> None:
    p, data = Pair(lean="0"), big_bundle()
    (info,) = p.send(m.Hello(1, 1024))
    assert not info.message.features & m.Feature.LEAN
    reply = lean_begin(p, data, chunk=500)
    assert isinstance(reply, m.Error) and reply.code == m.ErrorCode.UNKNOWN_MESSAGE
    (frame,) = p.send(m.DataLean(9, 0, data[:100]))
    assert frame.message.code == m.ErrorCode.UNSUPPORTED_VERSION
    (frame,) = p.send(m.DataLean(9, 0, data[:1500]))  # longer than its receive buffer
    assert isinstance(frame.message, m.Nak) and frame.message.reason == m.NakReason.BAD_FRAME
    assert p.store.entries() == p.before
    assert isinstance(p.one(m.Commit(9)), m.Error)
