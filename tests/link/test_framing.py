"""Framing and message parsing: whole, byte by byte, with junk; any input parses or raises
RemoteProtocolError (property tests)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provision.link import framing
from provision.link import messages as m
from provision.link.errors import RemoteProtocolError

VECTORS = Path(__file__).parents[1] / "vectors" / "frames.jsonl"
WIRE = [bytes.fromhex(json.loads(line)["hex"]) for line in VECTORS.read_text().splitlines()]
STREAM = b"".join(WIRE)
MAX_BODY = m.HEADER_SIZE + m.MAX_PAYLOAD


def _bodies(events: list) -> list[bytes]:
    assert all(isinstance(e, bytes) for e in events), events
    return events


def test_stream_whole_and_byte_by_byte_agree() -> None:
    whole = _bodies(framing.FrameDecoder(MAX_BODY).feed(STREAM))
    dec = framing.FrameDecoder(MAX_BODY)
    single = []
    for i in range(len(STREAM)):
        single += dec.feed(STREAM[i : i + 1])
    assert single == whole
    assert [framing.pack(b) for b in whole] == WIRE


def test_noise_before_and_after_resyncs_at_the_delimiter() -> None:
    dec = framing.FrameDecoder(MAX_BODY)
    events = dec.feed(b"\x13\x37garbage\xff" + b"\x00" + WIRE[0] + b"trailing junk")
    assert isinstance(events[0], framing.BadFrame)
    assert events[1:] == [framing.unpack(WIRE[0][:-1])]
    # The junk is held as the start of the next frame and reported when it ends.
    assert isinstance(dec.feed(b"\x00")[0], framing.BadFrame)


def test_empty_frames_are_silent() -> None:
    assert framing.FrameDecoder(MAX_BODY).feed(b"\x00\x00\x00") == []


def test_oversized_frame_is_dropped_and_memory_stays_bounded() -> None:
    dec = framing.FrameDecoder(64)
    events = dec.feed(b"\x01" * 10_000)
    assert events == [] and len(dec._buf) <= dec.max_encoded
    events = dec.feed(b"\x00" + WIRE[0][:0] + framing.pack(b"\x01\x01\x01\x00\x00\x00"))
    assert isinstance(events[0], framing.BadFrame) and "longer" in events[0].reason
    assert events[1] == b"\x01\x01\x01\x00\x00\x00"


def test_flipped_bit_is_caught_by_the_crc() -> None:
    frame = bytearray(WIRE[2])
    frame[5] ^= 0x10
    events = framing.FrameDecoder(MAX_BODY).feed(bytes(frame))
    assert len(events) == 1 and isinstance(events[0], framing.BadFrame)


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "shorter than a header"),
        (b"\x02\x01\x01\x00\x03\x00\x01\x00\x02", "unsupported protocol version 2"),
        (b"\x01\x55\x01\x00\x00\x00", "unknown message type 0x55"),
        (b"\x01\x01\x01\x00\x05\x00\x01\x00\x02", "header says 5"),
        (b"\x01\x01\x01\x00\x04\x00\x01\x00\x02\x09", "malformed HELLO"),
        (b"\x01\x85\x01\x00\x05\x00\x01\x00\x00\x00\x01", "malformed LIST_PAGE"),
    ],
)
def test_bad_bodies_raise_remote_protocol_error(body: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError, match=reason):
        m.decode(body)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_body_parses_or_raises_remote_protocol_error(data: bytes) -> None:
    try:
        frame = m.decode(data)
    except RemoteProtocolError:
        return
    # What parsed rebuilds to the same bytes (no lossy field).
    assert m.encode(frame.message, frame.seq) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
def test_any_stream_never_raises_and_split_does_not_matter(data: bytes, step: int) -> None:
    whole = framing.FrameDecoder(256).feed(data)
    dec = framing.FrameDecoder(256)
    pieces = []
    for i in range(0, len(data), step):
        pieces += dec.feed(data[i : i + step])
    assert pieces == whole
    for event in whole:
        if isinstance(event, bytes):
            with contextlib.suppress(RemoteProtocolError):
                m.decode(event)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(WIRE), st.binary(max_size=40), st.binary(max_size=40))
def test_a_frame_between_junk_still_arrives(frame: bytes, before: bytes, after: bytes) -> None:
    events = framing.FrameDecoder(MAX_BODY).feed(before + b"\x00" + frame + after)
    assert framing.unpack(frame[:-1]) in events
