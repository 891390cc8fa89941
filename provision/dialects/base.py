"""The dialect contract: what every device language offers, and what each one declares.

A dialect module (native.py, at_cmng.py, …) owns its device: it declares one `DialectProfile`
(slot types, the limits its own encoder computes, capabilities) and one session class that
satisfies `DialectSession`. Callers branch on `Capability`, never on a dialect's name or on
`getattr`. Registration is one line in provision.dialects.DIALECTS.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from provision.bundle.model import CredentialSet, Slot, SlotType

if TYPE_CHECKING:
    from provision.trace import TraceLog
    from provision.transport.base import Transport

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


class SentBytes:
    """A write's progress in bytes as they leave the host: `part(base)` is the callback for
    the piece (a command line, a frame) that starts `base` bytes into the write, to hand to
    provision.transport.base.send; None when nobody watches. The count never goes back: a
    piece sent again (a retry) moves nothing until it passes what was shown."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress = progress
        self.total = total
        self.shown = 0

    def part(self, base: int) -> Callable[[int], None] | None:
        if self._progress is None:
            return None
        return lambda n: self.show(base + n)

    def show(self, done: int) -> None:
        done = min(done, self.total)
        if self._progress is not None and done > self.shown:
            self.shown = done
            self._progress(done, self.total)


SlotKey = tuple[int, SlotType]
# What a device holds, by key: the digest of the stored bytes (None: the dialect lists the
# entry without one).
Holdings = Mapping[SlotKey, bytes | None]


class Capability(str, enum.Enum):
    """What a dialect (or one device, once its session is open) can do."""

    ATOMIC_COMMIT = "atomic_commit"  # a cut at any byte leaves the old set or the new one
    KEYGEN = "keygen"  # the device makes a client_key in a slot and answers with a CSR
    READ_BACK = "read_back"  # certificates can be read back
    SIGNED_BUNDLES = "signed_bundles"  # takes bundle bytes as they are; checks a signature
    ENCRYPTED_KEYS = "encrypted_keys"  # keeps a password-encrypted client_key with its password
    ATTESTATION = "attestation"  # a device-signed statement of its identity
    DEVICE_TLS = "device_tls"  # the device runs a mutual-TLS handshake with its own slots
    SLOT_SIZES = "slot_sizes"  # its listing reports each slot's size
    LINE_RATE = "line_rate"  # switches the session to a faster line rate (BaudSwitchingSession)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Refusal:
    """One thing a device cannot hold, found before any byte is sent. `code` is a stable
    finding code (size.too_large, slot.unsupported, …) shared with `provision check`."""

    code: str
    message: str
    sec_tag: int | None = None
    slot: SlotType | None = None
    # Advice, not a refusal: the device holds it, but the user should know (the check shows
    # it as a warning; nothing is refused for it).
    warning: bool = False


@dataclass(frozen=True)
class DialectProfile:
    """What a family of devices holds, as the dialect's own encoder computes it.

    `refusals` runs the same planning the driver runs before it sends anything, so the
    pre-flight check and the driver cannot disagree about a limit. `stored_forms` gives the
    exact bytes the device keeps for each (sec_tag, slot type): what its digests cover.
    """

    dialect: str
    target: str  # the name `check --target` knows it by (nrf91, zephyr, default)
    description: str
    slot_types: frozenset[SlotType]
    capabilities: frozenset[Capability]
    refusals: Callable[[CredentialSet], list[Refusal]]
    stored_forms: Callable[[CredentialSet], dict[SlotKey, bytes]]
    encodings: str  # how items travel, in words (help, docs)
    # Advisory limits the check warns about (a device may be configured otherwise).
    max_items: int | None = None
    server_chain_limit: int | None = None
    # What a write leaves on the device if it is cut short (a power cut, a lost link), in
    # one sentence: help, docs and the error after a failed write quote it.
    guarantee: str = "no guarantee stated: after a failed write, list what the device holds"

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def summary(self) -> dict[str, object]:
        """JSON-safe description for help, `device info --json` and docs."""
        return {
            "dialect": self.dialect,
            "target": self.target,
            "description": self.description,
            "slots": sorted(t.label for t in self.slot_types),
            "capabilities": sorted(c.value for c in self.capabilities),
            "encodings": self.encodings,
            "guarantee": self.guarantee,
        }


def unsupported_slots(
    credentials: CredentialSet, profile_slots: frozenset[SlotType], dialect: str
) -> list[Refusal]:
    """Refusals for slots a dialect has no place for."""
    return [
        Refusal(
            "slot.unsupported",
            f"sec_tag {s.sec_tag}: {dialect} cannot store a {s.type.label} slot",
            s.sec_tag,
            s.type,
        )
        for s in credentials
        if s.type not in profile_slots
    ]


@dataclass(frozen=True)
class DeviceInfo:
    dialect: str  # "native", "at-cmng", "zephyr-shell", …
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
    # The device itself confirmed, as part of the write, digests over exactly this set (the
    # native COMMITTED's set digest): no separate verify needs to ask it again.
    confirmed: bool = False
    # The set's tags as the session listed them after its last send, every digest found:
    # the job's verify compares them instead of asking again.
    listing: tuple[SlotInfo, ...] | None = None
    # Keys the set names that already held exactly their new content: not sent again.
    unchanged: tuple[SlotKey, ...] = ()
    # A command that stores content went out more than once (a retry, a rewrite): a garbled
    # send may have stored it under a key nobody named, which the job then looks for in a
    # whole listing. Each sent once and found where it belongs, none can have been.
    resent: bool = True


class DialectSession(Protocol):
    """One open conversation with a device in one dialect. The drive loop (timeouts,
    retries) is the session's; its byte-level code stays sans-IO."""

    name: ClassVar[str]
    profile: ClassVar[DialectProfile]

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The profile's capabilities narrowed to what this device announced."""
        ...

    @property
    def bytes_sent(self) -> int: ...

    def info(self) -> DeviceInfo: ...

    def list(self) -> list[SlotInfo]: ...

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        """Certificates only; a dialect refuses secret slots before asking the device."""
        ...

    def write(
        self,
        credentials: CredentialSet,
        progress: Progress | None = None,
        *,
        held: Holdings | None = None,
    ) -> WriteResult:
        """Apply the whole set. What the device cannot hold raises PolicyError before any
        byte is sent. `held`: a believed listing of the whole device from just before (the
        job reads one where the write is not atomic); a session may skip work it shows is
        not needed. None: nothing is known."""
        ...

    def write_bundle(
        self, bundle: bytes, progress: Progress | None = None, *, held: Holdings | None = None
    ) -> WriteResult:
        """Apply bundle bytes: as they are where the device takes bundles (a signature
        stays), else their decoded credentials."""
        ...

    def delete(self, sec_tag: int | None, slot_type: SlotType | None) -> None:
        """One slot, one tag (slot_type None) or everything (both None)."""
        ...

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        """Device generates an EC P-256 client_key in `sec_tag` and returns a CSR (DER)."""
        ...

    def check_keygen(self, sec_tag: int, subject: str | None) -> None:
        """PolicyError for a keygen request this device would refuse or mangle (a subject
        too long for its command or frame); sends nothing."""
        ...

    def close(self) -> None: ...


class Attestation(Protocol):
    """A device-signed statement (decoded by its dialect), as shown to users."""

    @property
    def device_uuid(self) -> str: ...

    def to_json(self) -> dict[str, object]: ...


class AttestingSession(Protocol):
    """What a session whose profile has Capability.ATTESTATION offers besides the contract:
    the attestation its last keygen came with (already checked against the CSR by the
    dialect), and the device's identity token on request."""

    last_attestation: Attestation | None

    def attestation_token(self) -> Attestation | None: ...


class BaudSwitchingSession(Protocol):
    """What a session whose device has Capability.LINE_RATE offers: move the open session
    to `rate` (None: the fastest both ends can do), falling back to the rate it opened at
    when the new one does not carry; returns the rate in use."""

    def switch_baud(self, rate: int | None) -> int | None: ...

    def restore_baud(self) -> None:
        """Back to the rate the session opened at, the session still open (best effort)."""


class SessionFactory(Protocol):
    """A session class: `probe` asks whether the transport's device speaks the dialect;
    the constructor opens a session (raises LinkError when nothing answers)."""

    name: ClassVar[str]
    profile: ClassVar[DialectProfile]
    # Sent after a cut-short write (an operator's interrupt) to end a half-sent frame, where
    # the dialect's frames survive a cut (native: a delimiter); None where a command is
    # never cut (text dialects send whole lines).
    CUT_RESYNC: ClassVar[bytes | None]

    def __call__(
        self,
        transport: Transport,
        *,
        timeout: float,
        retries: int,
        trace: TraceLog | None = None,
    ) -> DialectSession: ...

    def probe(self, transport: Transport, timeout: float) -> bool: ...


class WritesDecodedBundles:
    """For a session whose device takes credentials, not bundles (no SIGNED_BUNDLES): the
    contract's `write_bundle` is `write` of the bundle's decoded set, and its capabilities
    are its profile's (nothing a device announces narrows them)."""

    profile: ClassVar[DialectProfile]

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.profile.capabilities

    def write(
        self,
        credentials: CredentialSet,
        progress: Progress | None = None,
        *,
        held: Holdings | None = None,
    ) -> WriteResult:
        raise NotImplementedError

    def write_bundle(
        self, bundle: bytes, progress: Progress | None = None, *, held: Holdings | None = None
    ) -> WriteResult:
        from provision.bundle.format import decode

        return self.write(decode(bundle).credentials, progress, held=held)


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def each_slot_stored(
    credentials: CredentialSet, stored: Callable[[Slot], bytes]
) -> dict[SlotKey, bytes]:
    """stored_forms for a dialect that keeps each slot on its own."""
    return {slot.key: stored(slot) for slot in credentials}
