"""Helpers shared by the dialect tests (imported by name: tests/ has no packages)."""

from __future__ import annotations


class AnswerQueue:
    """The read side of the test transports: what the device answered waits in `pending`
    and read() hands it out at once (no timeouts in back-to-back tests)."""

    pending: bytearray
    closed = False

    def read(self, max_bytes: int, timeout: float) -> bytes:
        out = bytes(self.pending[:max_bytes])
        del self.pending[:max_bytes]
        return out

    def close(self) -> None:
        self.closed = True


class LoopTransport(AnswerQueue):
    """Transport whose far end is a sans-IO device object: write() runs the device, read()
    returns what it answered. `mute_after` bytes written, the device stops answering."""

    def __init__(self, device, mute_after: int | None = None) -> None:
        self.device = device
        self.pending = bytearray(device.boot())
        self.sent = bytearray()
        self.mute_after = mute_after
        self.inject = b""  # bytes to prepend to the next reply (noise on the line)

    def write(self, data: bytes) -> None:
        self.sent += data
        if self.mute_after is not None and len(self.sent) > self.mute_after:
            return
        reply = self.device.receive_data(data)
        if reply and self.inject:
            reply, self.inject = self.inject + reply, b""
        self.pending += reply
