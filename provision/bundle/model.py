"""The domain values every layer shares: slots, security tags and credential sets.

Values are frozen: builders produce them, nothing mutates a set after it is checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from provision.errors import InputError

# nRF91 reserves sec_tags above 2^31-1 for the modem; Zephyr's sec_tag_t is a signed int.
# The intersection is what a bundle may address on every device family we support.
MAX_SEC_TAG = 2_147_483_647


class SlotType(IntEnum):
    """What a slot holds. Values are the on-wire numbers of the bundle and link formats."""

    ROOT_CA = 0
    CLIENT_CERT = 1
    CLIENT_KEY = 2
    KEY_PASSWORD = 3
    PSK = 4
    PSK_IDENTITY = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def is_secret(self) -> bool:
        """Secret slots are never printed, logged, read back or put in JSON."""
        return self in (SlotType.CLIENT_KEY, SlotType.KEY_PASSWORD, SlotType.PSK)

    @property
    def is_certificate(self) -> bool:
        return self in (SlotType.ROOT_CA, SlotType.CLIENT_CERT)

    @classmethod
    def parse(cls, name: str) -> SlotType:
        """Accept `root_ca`, `root-ca`, `ROOT_CA`; raise InputError naming the valid ones."""
        key = name.strip().upper().replace("-", "_")
        try:
            return cls[key]
        except KeyError:
            valid = ", ".join(s.label for s in cls)
            raise InputError(f"unknown slot name {name!r} (valid: {valid})") from None


class Encoding(IntEnum):
    DER = 0
    PEM = 1
    RAW = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class SlotFlags(IntFlag):
    NONE = 0
    # The client_key is PKCS#8-encrypted; its password is the tag's key_password slot.
    ENCRYPTED = 1


@dataclass(frozen=True)
class Slot:
    """One credential item in one security tag."""

    sec_tag: int
    type: SlotType
    encoding: Encoding
    data: bytes = field(repr=False)
    flags: SlotFlags = SlotFlags.NONE

    def __post_init__(self) -> None:
        if not 0 <= self.sec_tag <= MAX_SEC_TAG:
            raise InputError(f"sec_tag {self.sec_tag} out of range (0..{MAX_SEC_TAG})")
        # Bundle decode builds thousands of slots a second, always with the enums already:
        # convert (and validate) only plain ints, as a caller may pass them.
        if type(self.type) is not SlotType:
            object.__setattr__(self, "type", SlotType(self.type))
        if type(self.encoding) is not Encoding:
            object.__setattr__(self, "encoding", Encoding(self.encoding))
        if type(self.flags) is not SlotFlags:
            object.__setattr__(self, "flags", SlotFlags(self.flags))

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.data).digest()

    @property
    def key(self) -> tuple[int, SlotType]:
        return (self.sec_tag, self.type)

    def __repr__(self) -> str:
        # Key bytes and passwords never reach a log through repr().
        return (
            f"Slot(sec_tag={self.sec_tag}, type={self.type.label}, "
            f"encoding={self.encoding.label}, size={len(self.data)})"
        )


def _canonical(slot: Slot) -> tuple[int, int, bytes]:
    return (slot.sec_tag, int(slot.type), slot.data)


@dataclass(frozen=True)
class CredentialSet:
    """The credentials for one device, in canonical order (sec_tag, slot type, bytes).

    Canonical order makes packing deterministic whatever order the inputs came in.
    Several root_ca slots may share a tag; every other slot type appears once per tag.
    """

    slots: tuple[Slot, ...]
    device_id: str | None = None

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.slots, key=_canonical))
        seen: set[tuple[int, SlotType]] = set()
        for slot in ordered:
            if slot.type is not SlotType.ROOT_CA and slot.key in seen:
                raise InputError(f"duplicate slot {slot.type.label} in sec_tag {slot.sec_tag}")
            seen.add(slot.key)
        object.__setattr__(self, "slots", ordered)

    @classmethod
    def of(cls, slots: Iterable[Slot], device_id: str | None = None) -> CredentialSet:
        return cls(tuple(slots), device_id)

    def __iter__(self) -> Iterator[Slot]:
        return iter(self.slots)

    def __len__(self) -> int:
        return len(self.slots)

    @property
    def sec_tags(self) -> tuple[int, ...]:
        return tuple(sorted({s.sec_tag for s in self.slots}))

    def in_tag(self, sec_tag: int) -> tuple[Slot, ...]:
        return tuple(s for s in self.slots if s.sec_tag == sec_tag)

    def get(self, sec_tag: int, slot_type: SlotType) -> Slot | None:
        for s in self.slots:
            if s.sec_tag == sec_tag and s.type is slot_type:
                return s
        return None

    def roots(self, sec_tag: int) -> tuple[Slot, ...]:
        return tuple(s for s in self.in_tag(sec_tag) if s.type is SlotType.ROOT_CA)
