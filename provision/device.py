"""Device: the operations a factory script or the CLI uses, over any dialect and transport.

    import provision.device
    with provision.device.open("sim://native") as dev:
        print(dev.info())
        dev.write(credentials)

A dialect session (provision.dialects.*) speaks one device language over a Transport; this
module adds what is the same for every dialect: verifying digests after a write, and picking
a dialect. Contract owners: the link issue (native) and the dialects issue (at-cmng, zephyr-shell).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from provision.bundle.model import CredentialSet, Slot, SlotType
from provision.errors import InputError, LinkError
from provision.trace import TraceLog, env_enabled
from provision.transport.base import (
    InterruptibleTransport,
    Transport,
    open_transport,
    transport_clock,
)

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class DeviceInfo:
    dialect: str  # "native", "at-cmng", "zephyr-shell"
    device_id: str  # UID (native), IMEI (at-cmng), or what the shell reports
    firmware: str
    details: dict[str, object] = field(default_factory=dict)  # dialect-specific, JSON-safe


@dataclass(frozen=True)
class SlotInfo:
    """What a device reports about one stored slot. Never carries key bytes."""

    sec_tag: int
    type: SlotType
    size: int | None  # None where the dialect does not report it
    sha256: bytes | None  # digest of the bytes as stored on the device


@dataclass(frozen=True)
class WriteResult:
    written: tuple[SlotInfo, ...]
    bytes_sent: int  # on the wire, framing included
    seconds: float


class DialectSession(Protocol):
    """One open conversation with a device in one dialect. Implementations own their drive
    loop (timeouts, retries) over the Transport; their byte-level code stays sans-IO."""

    name: str

    def info(self) -> DeviceInfo: ...

    def list(self) -> list[SlotInfo]: ...

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        """Certificates only; a dialect refuses secret slots before asking the device."""
        ...

    def write(self, credentials: CredentialSet, progress: Progress | None = None) -> WriteResult:
        """Apply the whole set. Slots a dialect cannot hold raise PolicyError before any byte
        is sent."""
        ...

    def delete(self, sec_tag: int | None, slot_type: SlotType | None) -> None:
        """One slot, one tag (slot_type None) or everything (both None)."""
        ...

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        """Device generates an EC P-256 client_key in `sec_tag` and returns a CSR (DER)."""
        ...

    def stored_form(self, slot: Slot) -> bytes:
        """The exact bytes this dialect stores for `slot`: what the device's digest covers."""
        ...

    def close(self) -> None: ...


# dialect name → "module:Class"; each class has `probe(transport, timeout) -> bool` (classmethod)
# and a constructor `(transport, *, timeout: float, retries: int)`; device.open passes
# `trace=` (a provision.trace.TraceLog) too when tracing is on.
DIALECTS: dict[str, str] = {
    "native": "provision.dialects.native:NativeSession",
    "at-cmng": "provision.dialects.at_cmng:AtCmngSession",
    "zephyr-shell": "provision.dialects.zephyr_shell:ZephyrShellSession",
    "at-shell": "provision.dialects.at_shell:AtShellSession",
}
# The order `auto` tries them in: the native HELLO is harmless to a line-based shell.
# at-shell last: its `at AT` line reaches only a device that none of the others claimed.
AUTO_ORDER = ("native", "at-cmng", "zephyr-shell", "at-shell")


def session_class(name: str) -> type:
    """The DialectSession class registered for dialect `name` (imported on first use)."""
    try:
        target = DIALECTS[name]
    except KeyError:
        valid = ", ".join([*DIALECTS, "auto"])
        raise InputError(f"unknown dialect {name!r} (valid: {valid})") from None
    module_name, cls_name = target.split(":")
    return getattr(importlib.import_module(module_name), cls_name)


@dataclass(frozen=True)
class VerifyReport:
    mismatches: tuple[str, ...]  # one line each: "sec_tag 42 client_cert: digest differs"

    @property
    def ok(self) -> bool:
        return not self.mismatches


class Device:
    """A device reached over one transport in one dialect."""

    def __init__(self, session: DialectSession, url: str) -> None:
        self.session = session
        self.url = url

    @property
    def dialect(self) -> str:
        return self.session.name

    def info(self) -> DeviceInfo:
        return self.session.info()

    def list(self) -> list[SlotInfo]:
        return self.session.list()

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        if slot_type.is_secret:
            raise InputError(f"{slot_type.label} cannot be read back from a device")
        return self.session.read(sec_tag, slot_type)

    def write(self, credentials: CredentialSet, progress: Progress | None = None) -> WriteResult:
        return self.session.write(credentials, progress)

    def write_bundle(self, bundle: bytes, progress: Progress | None = None) -> WriteResult:
        """Write bundle bytes. A dialect with `write_bundle` gets them as they are (a signed
        bundle keeps its signature); others get the decoded credentials."""
        writer = getattr(self.session, "write_bundle", None)
        if writer is not None:
            return writer(bundle, progress)
        from provision.bundle.format import decode

        return self.session.write(decode(bundle).credentials, progress)

    def delete(self, sec_tag: int | None, slot_type: SlotType | None = None) -> None:
        self.session.delete(sec_tag, slot_type)

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        return self.session.keygen(sec_tag, subject)

    def verify(self, credentials: CredentialSet) -> VerifyReport:
        """Compare the device's digests with the digests of what this dialect stores."""
        on_device = {(s.sec_tag, s.type): s for s in self.session.list()}
        mismatches: list[str] = []
        stored_forms = getattr(self.session, "stored_forms", None)
        if stored_forms is not None:
            # A dialect that merges slots (several root_ca in one nRF91 entry) or keeps one out
            # of its store (key_password as the client_key's passwd) says what each key holds.
            expected_forms = list(stored_forms(credentials).items())
        else:
            expected_forms = [(slot.key, self.session.stored_form(slot)) for slot in credentials]
        for key, form in expected_forms:
            expected = _digest(form)
            found = on_device.get(key)
            where = f"sec_tag {key[0]} {key[1].label}"
            if found is None:
                mismatches.append(f"{where}: missing on device")
            elif found.sha256 is not None and found.sha256 != expected:
                mismatches.append(f"{where}: digest differs")
        return VerifyReport(tuple(mismatches))

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _digest(data: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(data).digest()


def open(
    url: str,
    *,
    dialect: str = "auto",
    baud: int | None = None,
    timeout: float = 2.0,
    retries: int = 5,
    trace: bool = False,
    interrupt: Callable[[], bool] | None = None,
) -> Device:
    """Open a device at `url` (any pyserial URL, or sim://…) in `dialect` or by probing.

    `trace` (or PROVISION_TRACE=1): every frame or line of the session on stderr, secrets
    redacted (provision.trace); the probing of `auto` is not traced. `interrupt`: while it
    returns True, every read and write raises transport.base.Interrupted (`line run`'s
    signals cut a step short)."""
    transport: Transport = open_transport(url, baud)
    if interrupt is not None:
        transport = InterruptibleTransport(transport, interrupt)
    try:
        names = AUTO_ORDER if dialect == "auto" else (dialect,)
        for name in names:
            cls = session_class(name)
            if dialect == "auto" and not cls.probe(transport, timeout):
                continue
            if isinstance(transport, InterruptibleTransport):
                transport.resync = getattr(cls, "CUT_RESYNC", None)
            extra: dict[str, object] = {}
            if trace or env_enabled():
                log = TraceLog(transport_clock(transport))
                log.note("--", f"{url}: dialect {name}")
                extra["trace"] = log
            try:
                session = cls(transport, timeout=timeout, retries=retries, **extra)
            except LinkError as err:
                if dialect == "auto":
                    raise
                # The commonest cause of silence from a named dialect is the wrong name.
                raise LinkError(
                    f"{err} (not a {name} device? --dialect auto probes)", code=err.code
                ) from None
            return Device(session, url)
    except BaseException:
        transport.close()
        raise
    transport.close()
    # Nothing recognisable came back: a link failure (exit 8, "no answer"), not a device's
    # error reply.
    raise LinkError(
        f"{url}: no known dialect answered (tried {', '.join(names)}): is a device on this "
        "port, powered, at this --baud? If it is, name its --dialect"
    )
