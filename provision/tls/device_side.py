"""The device end of a TLS check, for the simulators: slots in, HandshakeReport out.

A simulator calls one function with what its flash holds; nothing from the host is added.
Each device family numbers credential types its own way; the maps below translate them to
slots. This runs the handshake synchronously (real sockets) — a simulator answers when done.
"""

from __future__ import annotations

from collections.abc import Mapping

from provision.bundle.model import Encoding, Slot, SlotType
from provision.errors import InputError
from provision.tls.client import DEFAULT_TIMEOUT, handshake_from_slots
from provision.tls.report import Failure, HandshakeReport
from provision.tls.wire import (
    AT_PREFIX,
    SHELL_PREFIX,
    parse_at_args,
    parse_shell_args,
    report_line,
)

# Stored type number → slot, per device family.
NATIVE_TYPES: Mapping[int, SlotType] = {int(t): t for t in SlotType}
AT_CMNG_TYPES: Mapping[int, SlotType] = {
    0: SlotType.ROOT_CA,
    1: SlotType.CLIENT_CERT,
    2: SlotType.CLIENT_KEY,
}
ZEPHYR_TYPES: Mapping[int, SlotType] = {
    1: SlotType.ROOT_CA,  # CA_CERTIFICATE
    2: SlotType.CLIENT_CERT,  # SERVER_CERTIFICATE: "our own" certificate
    3: SlotType.CLIENT_KEY,  # PRIVATE_KEY
}


def slots_from_store(
    entries: Mapping[tuple[int, int], bytes],
    sec_tag: int,
    types: Mapping[int, SlotType] = NATIVE_TYPES,
    key_password: bytes | None = None,
) -> list[Slot]:
    """The slots of one sec_tag as a device stores them. Zephyr tools store PEM with a
    trailing NUL (mbedTLS wants it); it is not part of the PEM."""
    slots = []
    for (tag, kind), data in entries.items():
        if tag != sec_tag or kind not in types:
            continue
        slot_type = types[kind]
        data = data.rstrip(b"\x00") if b"-----BEGIN " in data else data
        if slot_type is SlotType.KEY_PASSWORD:
            encoding = Encoding.RAW
        else:
            encoding = Encoding.PEM if b"-----BEGIN " in data else Encoding.DER
        slots.append(Slot(sec_tag, slot_type, encoding, data))
    if key_password:
        slots.append(Slot(sec_tag, SlotType.KEY_PASSWORD, Encoding.RAW, key_password))
    return slots


def device_check(
    entries: Mapping[tuple[int, int], bytes],
    sec_tag: int,
    host: str,
    port: int,
    *,
    tls_version: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    types: Mapping[int, SlotType] = NATIVE_TYPES,
    key_password: bytes | None = None,
) -> HandshakeReport:
    """Run the handshake with only the stored slots of `sec_tag`. Never raises."""
    slots = slots_from_store(entries, sec_tag, types, key_password)
    return handshake_from_slots(
        slots, sec_tag, host, port, tls_version=tls_version, timeout=timeout
    )


def at_tlscheck(
    entries: Mapping[tuple[int, int], bytes],
    args: str,
    passwords: Mapping[int, bytes] | None = None,
) -> tuple[list[str], str] | None:
    """`AT#XTLSCHECK=<args>` on a simulated modem → (information lines, final result), or
    None when the arguments are malformed (the modem answers ERROR / +CME ERROR: 50)."""
    try:
        sec_tag, host, port, tls = parse_at_args(args)
    except InputError:
        return None
    password = (passwords or {}).get(sec_tag)
    report = device_check(
        entries, sec_tag, host, port, tls_version=tls, types=AT_CMNG_TYPES, key_password=password
    )
    return [report_line(AT_PREFIX, report)], "OK"


def shell_tlscheck(entries: Mapping[tuple[int, int], bytes], argv: list[str]) -> list[str]:
    """`cred tlscheck <sec_tag> <host> <port> [tls]` on a simulated Zephyr shell → lines."""
    try:
        sec_tag, host, port, tls = parse_shell_args(argv)
    except InputError as err:
        return [f"cred tlscheck: {err.message}"]
    report = device_check(entries, sec_tag, host, port, tls_version=tls, types=ZEPHYR_TYPES)
    return [report_line(SHELL_PREFIX, report)]


__all__ = [
    "AT_CMNG_TYPES",
    "NATIVE_TYPES",
    "ZEPHYR_TYPES",
    "Failure",
    "at_tlscheck",
    "device_check",
    "shell_tlscheck",
    "slots_from_store",
]
