"""`provision device tls-check`: ask the device to prove its credentials, or do it on the host.

On a device: the dialect session's `tls_check(sec_tag, host, port, tls_version=, timeout=)`
makes the (simulated) device run the handshake with only its own slots. A target that cannot
(the C stub, a real board: its HELLO features or its command set say so) raises
TLSCheckUnsupported, whose message offers the host-side equivalent with the bundle.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from provision.bundle.format import decode
from provision.bundle.model import SlotType
from provision.errors import InputError
from provision.pki.files import read_input
from provision.tls.client import DEFAULT_TIMEOUT, handshake_from_slots
from provision.tls.device_proof import LINK_MARGIN, TLSCheckUnsupported, prove
from provision.tls.report import HandshakeReport

if TYPE_CHECKING:
    from provision.device import Device

__all__ = [
    "LINK_MARGIN",
    "TLSCheckUnsupported",
    "check_on_device",
    "check_with_bundle",
    "run_check",
]

# Per-request link timeout for everything else (HELLO, LIST), as `provision device`.
LINK_TIMEOUT = 2.0


def check_on_device(
    device: Device,
    host: str,
    port: int,
    sec_tag: int,
    *,
    tls_version: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HandshakeReport:
    """Ask an open provision.device.Device to run the handshake with its own slots."""
    return prove(device.session, sec_tag, host, port, tls_version=tls_version, timeout=timeout)


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


def _only_tag(tags: set[int], where: str) -> int:
    if len(tags) == 1:
        return next(iter(tags))
    if not tags:
        raise InputError(f"{where} holds no client_cert in any sec_tag")
    listed = ", ".join(str(t) for t in sorted(tags))
    raise InputError(f"{where} has client certificates in several sec_tags ({listed}): give --tag")


def run_check(
    host: str,
    port: int,
    *,
    sec_tag: int | None = None,
    bundle: Path | None = None,
    url: str | None = None,
    dialect: str = "auto",
    baud: int | None = None,
    tls_version: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[HandshakeReport, str]:
    """The tls-check command: on the device at `url`, or on the host with `bundle`.

    With both, the device goes first and the bundle is the fallback for a target that cannot
    run a handshake itself (the returned words say which ran, and why). `sec_tag` None means
    the only tag holding a client_cert. Returns the report and where the handshake ran.
    """
    if url is None and bundle is None:
        raise InputError("give --port URL (the device) or --bundle FILE (host-side check)")
    if url is not None:
        try:
            return _on_device(url, dialect, baud, host, port, sec_tag, tls_version, timeout)
        except TLSCheckUnsupported as err:
            if bundle is None:
                raise
            where = f"host, with the slots of {bundle} (the device cannot: {err.why})"
    else:
        where = f"host, with the slots of {bundle}"
    assert bundle is not None
    creds = decode(read_input(bundle, "bundle")).credentials
    tags = {s.sec_tag for s in creds if s.type is SlotType.CLIENT_CERT}
    if sec_tag is None:
        sec_tag = _only_tag(tags, str(bundle))
    elif all(s.sec_tag != sec_tag for s in creds):
        # The user's own file and option disagree: bad input, not a failed handshake.
        listed = ", ".join(str(t) for t in sorted(tags)) or "none"
        raise InputError(
            f"{bundle} holds nothing in sec_tag {sec_tag} (client certificates in sec_tags: "
            f"{listed}): give one of those as --tag"
        )
    report = check_with_bundle(
        bundle, host, port, sec_tag, tls_version=tls_version, timeout=timeout
    )
    return report, where


def _on_device(
    url: str,
    dialect: str,
    baud: int | None,
    host: str,
    port: int,
    sec_tag: int | None,
    tls_version: str | None,
    timeout: float,
) -> tuple[HandshakeReport, str]:
    import provision.device

    with provision.device.open(url, dialect=dialect, baud=baud, timeout=LINK_TIMEOUT) as device:
        if sec_tag is None:
            tags = {s.sec_tag for s in device.list() if s.type is SlotType.CLIENT_CERT}
            sec_tag = _only_tag(tags, url)
        report = check_on_device(
            device, host, port, sec_tag, tls_version=tls_version, timeout=timeout
        )
        return report, f"device {url} ({device.dialect}), with its own slots"
