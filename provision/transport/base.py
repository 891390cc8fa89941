"""The transport contract.

Protocol code never touches a transport; only the dialect drivers' drive loops do. Timeouts
are arguments, so nothing here owns a retry policy. Which URL opens which transport is
provision.urls' business: nothing here names a simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable


@runtime_checkable
class Transport(Protocol):
    """A byte pipe to a device."""

    def write(self, data: bytes) -> None:
        """Send all of `data` (blocking until it is handed to the OS or the peer)."""

    def read(self, max_bytes: int, timeout: float) -> bytes:
        """Return 1..max_bytes bytes, or b"" if none arrived within `timeout` seconds."""

    def close(self) -> None:
        """Release the port. Safe to call twice."""


def transport_clock(transport: object) -> Callable[[], float]:
    """The clock a drive loop should use with `transport`: its own `clock()` if it has one
    (the sim:// pair runs on virtual time, so timeouts cost no wall time), else monotonic."""
    clock = getattr(transport, "clock", None)
    return clock if callable(clock) else time.monotonic


def send(transport: Transport, data: bytes, sent: Callable[[int], None] | None = None) -> None:
    """`transport.write(data)`, calling `sent(n)` with the bytes of `data` gone so far as they
    leave, when asked: a transport that can tell (`write_reporting`: a serial port drains each
    piece before the next) reports in pieces, any other once, after the write. A progress bar
    then moves while one long line crawls out at 1200 baud."""
    if sent is None:
        transport.write(data)
        return
    reporting = getattr(transport, "write_reporting", None)
    if reporting is None:
        transport.write(data)
        sent(len(data))
    else:
        reporting(data, sent)


class Interrupted(Exception):
    """The operator stopped the work in flight (a signal to `line run`): not a device or
    link fault, so no drive loop retries it."""


# Longest a read waits before looking at the interrupt flag again.
_INTERRUPT_SLICE = 0.1


class TransportWrapper:
    """A transport around another. What the drive loops look for beyond the contract
    (clock(), url, discard_output…) is the port's, and so is the line rate: set on a wrapper
    that kept it for itself, `line run --fast-baud` moved the device and not the port."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    @property
    def baudrate(self) -> int | None:
        return getattr(self.inner, "baudrate", None)

    @baudrate.setter
    def baudrate(self, rate: int) -> None:
        self.inner.baudrate = rate  # type: ignore[attr-defined]

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def write_reporting(self, data: bytes, sent: Callable[[int], None]) -> None:
        """`send` through to the port; a wrapper with a write of its own is not gone around
        (its write, then one report)."""
        if type(self).write is TransportWrapper.write:
            send(self.inner, data, sent)
        else:
            self.write(data)
            sent(len(data))

    def read(self, max_bytes: int, timeout: float) -> bytes:
        return self.inner.read(max_bytes, timeout)

    def close(self) -> None:
        self.inner.close()


def discard_output(transport: object) -> bool:
    """Drop what was written to `transport` but has not left yet, where the port can
    (tcflush TCOFLUSH on a tty); False where it cannot."""
    discard = getattr(transport, "discard_output", None)
    if not callable(discard):
        return False
    discard()
    return True


# What a line-based device sends: printable ASCII, line ends, tabs, VT100 escapes.
_TEXT = bytes(range(0x20, 0x7F)) + b"\t\r\n\x1b"
SPEED_HINT = "is the line speed right (--baud)?"


class NoiseMeter(TransportWrapper):
    """Counts the bytes read that are not text. A UART reading a sender at another rate
    makes most bytes into ones with the high bit set and no line ends, so a line dialect
    that times out amid such bytes was not met by silence: the error should say --baud."""

    SAMPLE = 4096

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self.received = 0
        self.noise = 0
        # The first bytes read, for a dialect to recognise its own (binary) frames in.
        self.sample = bytearray()

    def read(self, max_bytes: int, timeout: float) -> bytes:
        data = self.inner.read(max_bytes, timeout)
        self.received += len(data)
        self.noise += len(data.translate(None, _TEXT))
        if len(self.sample) < self.SAMPLE:
            self.sample += data[: self.SAMPLE - len(self.sample)]
        return data

    def speed_hint(self) -> str | None:
        """The hint for a "no answer" error, when what arrived was mostly not text."""
        if self.received >= 8 and 2 * self.noise >= self.received:
            return f"bytes arrived but nothing in them decoded: {SPEED_HINT}"
        return None


class InterruptibleTransport(TransportWrapper):
    """`inner`, but every read and write first asks `interrupted()` and raises Interrupted
    when it says so; a long read waits in slices, so a signal cuts a step short at 1200 baud
    instead of waiting for it. Writes are not split: a text dialect's line goes out whole,
    so an interrupted session never leaves half a command (an open quote) on the device.

    `resync` (set by a dialect whose frames survive a cut: native, b"\x00"): on interrupt,
    what was written but not sent yet is dropped (a windowed transfer queues kilobytes, tens
    of seconds at 1200 baud, that the rollback would wait behind) and `resync` is sent to end
    the cut frame."""

    def __init__(self, inner: Transport, interrupted: Callable[[], bool]) -> None:
        super().__init__(inner)
        self.interrupted = interrupted
        self.resync: bytes | None = None
        self._clock = transport_clock(inner)

    def _check(self) -> None:
        if not self.interrupted():
            return
        if self.resync is not None and discard_output(self.inner):
            self.inner.write(self.resync)
        raise Interrupted("interrupted by the operator")

    def write(self, data: bytes) -> None:
        self._check()
        self.inner.write(data)

    def write_reporting(self, data: bytes, sent: Callable[[int], None]) -> None:
        # Asked once for the whole of `data`, as write(): a line is never cut between pieces.
        self._check()
        send(self.inner, data, sent)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        deadline = self._clock() + max(0.0, timeout)
        while True:
            self._check()
            left = deadline - self._clock()
            data = self.inner.read(max_bytes, max(0.0, min(left, _INTERRUPT_SLICE)))
            if data or left <= _INTERRUPT_SLICE:
                return data
