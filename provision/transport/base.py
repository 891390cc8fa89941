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
