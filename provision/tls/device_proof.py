"""Device-side TLS proofs: the simulators' test commands that make a device handshake with
its own slots (docs/tls-check.md). They are not part of any production dialect, so the
drivers only offer a generic exchange (`request`, `command_reply`, `command_output`) and this
module speaks each simulator's command over it. A device that cannot raises
TLSCheckUnsupported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from provision.errors import DeviceError, InputError
from provision.tls import wire
from provision.tls.report import HandshakeReport

if TYPE_CHECKING:
    from provision.dialects.base import DialectSession

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
        self.why = why


Proof = Callable[["DialectSession", int, str, int, "str | None", float], HandshakeReport]


def _native(
    session: DialectSession, sec_tag: int, host: str, port: int, tls: str | None, timeout: float
) -> HandshakeReport:
    from provision.dialects.base import Capability
    from provision.dialects.native import NativeSession
    from provision.link import messages as m

    assert isinstance(session, NativeSession)
    server = f"{host}:{port}"
    if Capability.DEVICE_TLS not in session.capabilities:
        why = f"{session.hello.firmware!r} does not announce the TLS_CHECK feature"
        raise TLSCheckUnsupported("this device", why, sec_tag, server)
    request = m.TlsCheck(sec_tag, port, wire.tls_code(tls), min(int(timeout * 1000), 0xFFFF), host)
    reply = session.request(request, m.TlsResult, timeout=timeout + LINK_MARGIN)
    return wire.report_from_result(server, reply)


def _at(
    session: DialectSession, sec_tag: int, host: str, port: int, tls: str | None, timeout: float
) -> HandshakeReport:
    from provision.dialects.at_cmng import AtCmngSession

    assert isinstance(session, AtCmngSession)
    text = wire.encode_at(sec_tag, host, port, tls)
    reply = session.command_reply(text, wire.AT_PREFIX, timeout + LINK_MARGIN)
    if not reply.ok or not reply.lines:
        why = "it answers ERROR to AT#XTLSCHECK, a simulator-only command"
        raise TLSCheckUnsupported("this modem", why, sec_tag, f"{host}:{port}")
    try:
        return wire.parse_report_line(reply.lines[0], wire.AT_PREFIX)
    except InputError as err:
        raise DeviceError(f"AT#XTLSCHECK: {err.message}") from None


def _shell(
    session: DialectSession, sec_tag: int, host: str, port: int, tls: str | None, timeout: float
) -> HandshakeReport:
    from provision.dialects.zephyr_shell import ZephyrShellSession, device_message

    assert isinstance(session, ZephyrShellSession)
    out = session.command_output(wire.encode_shell(sec_tag, host, port, tls), timeout + LINK_MARGIN)
    for text_line in out:
        if wire.is_report_line(text_line, wire.SHELL_PREFIX):
            try:
                return wire.parse_report_line(text_line, wire.SHELL_PREFIX)
            except InputError as err:
                raise DeviceError(f"cred tlscheck: {err.message}") from None
    why = f"its shell answers `{device_message(out)}` to cred tlscheck, a simulator-only command"
    raise TLSCheckUnsupported("this Zephyr device", why, sec_tag, f"{host}:{port}")


# The simulators' proof command of each dialect that has one.
PROOFS: dict[str, Proof] = {
    "native": _native,
    "at-cmng": _at,
    "at-shell": _at,
    "zephyr-shell": _shell,
}


def prove(
    session: DialectSession,
    sec_tag: int,
    host: str,
    port: int,
    *,
    tls_version: str | None,
    timeout: float,
) -> HandshakeReport:
    """Ask an open session's device to run the handshake with its own slots."""
    proof = PROOFS.get(session.name)
    if proof is None:
        raise TLSCheckUnsupported(
            f"the {session.name} dialect",
            "it has no TLS check operation",
            sec_tag,
            f"{host}:{port}",
        )
    return proof(session, sec_tag, host, port, tls_version, timeout)
