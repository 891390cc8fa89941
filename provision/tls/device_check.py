"""`provision device tls-check`: ask the device to prove its credentials, or do it on the host.

On a device: the dialect session's `tls_check(sec_tag, host, port, tls_version=, timeout=)`
makes the (simulated) device run the handshake with only its own slots. A target that cannot
(the C stub, a real board: its HELLO features or its command set say so) raises
TLSCheckUnsupported, whose message offers the host-side equivalent with the bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from provision.bundle.format import decode
from provision.errors import DeviceError
from provision.pki.files import read_input
from provision.tls.client import DEFAULT_TIMEOUT, handshake_from_slots
from provision.tls.report import HandshakeReport

# A device does the whole handshake before it answers; the link waits this much longer.
LINK_MARGIN = 5.0


class TLSCheckUnsupported(DeviceError):
    """The target cannot run a TLS handshake itself."""

    def __init__(self, target: str, why: str, sec_tag: int, server: str) -> None:
        super().__init__(
            f"{target} cannot run a TLS handshake itself ({why}); run the same handshake on "
            f"the host with the bundle: provision device tls-check --bundle FILE "
            f"--server {server} --tag {sec_tag}",
            code="tls.unsupported",
        )


class TLSCapable(Protocol):
    def tls_check(
        self, sec_tag: int, host: str, port: int, *, tls_version: str | None, timeout: float
    ) -> HandshakeReport: ...


def check_on_device(
    device: object,
    host: str,
    port: int,
    sec_tag: int,
    *,
    tls_version: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HandshakeReport:
    """Ask an open provision.device.Device to run the handshake with its own slots."""
    session = getattr(device, "session", device)
    tls_check = getattr(session, "tls_check", None)
    server = f"{host}:{port}"
    if tls_check is None:
        name = getattr(session, "name", "this device")
        raise TLSCheckUnsupported(
            f"the {name} dialect", "it has no TLS check operation", sec_tag, server
        )
    return tls_check(sec_tag, host, port, tls_version=tls_version, timeout=timeout)


def check_with_bundle(
    bundle: Path,
    host: str,
    port: int,
    sec_tag: int,
    *,
    tls_version: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HandshakeReport:
    """The host-side equivalent: the same handshake with the bundle's slots of `sec_tag`."""
    decoded = decode(read_input(bundle, "bundle"))
    return handshake_from_slots(
        decoded.credentials, sec_tag, host, port, tls_version=tls_version, timeout=timeout
    )
