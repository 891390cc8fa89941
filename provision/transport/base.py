"""The transport contract and the URL registry.

Protocol code never touches a transport; only the drive loops in provision.device (and the
dialect drivers' loops) do. Timeouts are arguments, so nothing here owns a retry policy.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from provision.errors import InputError


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


TransportFactory = Callable[[str, int | None], Transport]

# scheme → "module:function". Resolved lazily so host code never imports the simulator
# (or pyserial) unless a URL asks for it.
_SCHEMES: dict[str, str] = {
    "sim": "provision.sim.serve:open_sim_transport",
}
_DEFAULT = "provision.transport.serial:open_serial"


def register_scheme(scheme: str, target: str) -> None:
    """Map `scheme://…` URLs to a factory given as "module:function"."""
    _SCHEMES[scheme] = target


def open_transport(url: str, baud: int | None = None) -> Transport:
    """Open `url`: `sim://…` and registered schemes, else any pyserial URL or device path."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    target = _SCHEMES.get(scheme, _DEFAULT)
    module_name, func_name = target.split(":")
    try:
        factory: TransportFactory = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as err:
        raise InputError(f"{url}: no transport for scheme {scheme!r} ({err})") from None
    return factory(url, baud)
