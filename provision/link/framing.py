"""Frames on the wire: COBS(body | CRC32) followed by one 0x00 delimiter. Sans-IO.

`body` is the frame header and payload built by provision.link.messages. The CRC is
CRC-32/ISO-HDLC (zlib.crc32) over `body`, little-endian. Because COBS removes every 0x00 from
the encoded bytes, a receiver resynchronises after noise at the next delimiter.
Byte-level spec: docs/protocol.md.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from cobs import cobs

from provision.link.errors import RemoteProtocolError

DELIMITER = b"\x00"
CRC_SIZE = 4


def encoded_limit(max_body: int) -> int:
    """Most bytes COBS can produce for a body of `max_body` bytes plus its CRC (no delimiter)."""
    n = max_body + CRC_SIZE
    return n + n // 254 + 1


def pack(body: bytes) -> bytes:
    """body → wire bytes (COBS-encoded body+CRC32 and the 0x00 delimiter)."""
    crc = zlib.crc32(body).to_bytes(CRC_SIZE, "little")
    return cobs.encode(body + crc) + DELIMITER


def unpack(encoded: bytes) -> bytes:
    """One frame's bytes between delimiters → body. Raises RemoteProtocolError."""
    try:
        raw = cobs.decode(encoded)
    except cobs.DecodeError:
        raise RemoteProtocolError("bad COBS encoding") from None
    if len(raw) < CRC_SIZE + 1:
        raise RemoteProtocolError("frame too short")
    body, crc = raw[:-CRC_SIZE], raw[-CRC_SIZE:]
    if zlib.crc32(body).to_bytes(CRC_SIZE, "little") != crc:
        raise RemoteProtocolError("CRC32 mismatch")
    return body


@dataclass(frozen=True)
class BadFrame:
    """Bytes between two delimiters that were not a valid frame (noise, CRC error, too long)."""

    reason: str
    size: int


class FrameDecoder:
    """Splits a byte stream into frame bodies. Never raises: bad frames become BadFrame events.

    Bytes beyond `max_body` (plus COBS overhead) without a delimiter are discarded as they
    arrive, so a receiver's memory stays bounded whatever the peer sends.
    """

    def __init__(self, max_body: int) -> None:
        self.max_encoded = encoded_limit(max_body)
        self._buf = bytearray()
        self._overflow = 0

    def feed(self, data: bytes) -> list[bytes | BadFrame]:
        events: list[bytes | BadFrame] = []
        start = 0
        while True:
            end = data.find(0, start)
            piece = data[start:] if end < 0 else data[start:end]
            if self._overflow or len(self._buf) + len(piece) > self.max_encoded:
                self._overflow += len(self._buf) + len(piece)
                self._buf.clear()
            else:
                self._buf += piece
            if end < 0:
                return events
            if self._overflow:
                events.append(BadFrame("frame longer than the receive buffer", self._overflow))
            elif self._buf:
                try:
                    events.append(unpack(bytes(self._buf)))
                except RemoteProtocolError as err:
                    events.append(BadFrame(err.message, len(self._buf)))
            # An empty frame (two delimiters in a row) is a deliberate resync, not an error.
            self._buf.clear()
            self._overflow = 0
            start = end + 1
