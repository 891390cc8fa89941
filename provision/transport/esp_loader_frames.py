"""The ESP serial loader's frames, sans IO: SLIP around every packet, the request header
and the data-block checksum (Espressif, "Serial Protocol": ROM loader and flasher stub).
Written once for both ends: the esptool owner module frames its data blocks with it, the
simulated ESP32 its responses."""

from __future__ import annotations

import struct

REQUEST, RESPONSE = 0x00, 0x01  # a packet's direction byte
CHECKSUM_SEED = 0xEF


def slip(packet: bytes) -> bytes:
    """One SLIP frame: END, the packet with END and ESC escaped, END."""
    return b"\xc0" + packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


def packet(direction: int, op: int, data: bytes, value: int = 0) -> bytes:
    """Direction, command, size u16, a u32 (a request's checksum, a response's value), data."""
    return struct.pack("<BBHI", direction, op, len(data), value) + data


def request_frame(op: int, data: bytes, chk: int = 0) -> bytes:
    return slip(packet(REQUEST, op, data, chk))


def checksum(data: bytes) -> int:
    """The XOR of the bytes, seeded with 0xEF. Folded on one integer in halves (a dozen
    big-integer operations for a 6 KB stub block) rather than a loop per byte, which was
    most of the simulator's and the line's time per board."""
    value, width = int.from_bytes(data, "little"), len(data)
    while width > 1:
        half = width // 2
        value = (value >> (8 * half)) ^ (value & ((1 << (8 * half)) - 1))
        width -= half
    return value ^ CHECKSUM_SEED
