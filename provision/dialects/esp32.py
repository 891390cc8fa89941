"""The `esp32` dialect: credentials in the esp_secure_cert partition, written through esptool.

The device is an ESP32-family chip in its serial bootloader (ROM, then esptool's flasher
stub), driven through esptool's Python API in provision.transport.esptool_link. The partition
is found in the chip's partition table (0x8000); its contents are the esp_secure_cert TLV
image of provision.bundle.esp_secure_cert, made by provision.bundle.esp_pack.

Mapping: the partition holds one sec_tag. Its root_ca items are CA_CERT entries (subtypes 0,
1, ...), client_cert the DEV_CERT entry, client_key the PRIV_KEY entry. The tag is not stored
on the chip: list() reports the session's `sec_tag` (constructor argument, else the
PROVISION_ESP32_SEC_TAG environment variable, else 0) until a write in this session sets it.
Several root_ca items are one stored form (their entries' bytes in subtype order), as on the
nRF91, so one digest covers them.

No atomic commit. A write erases the partition's sectors and programs the image, then 0xFF to
the end of the partition (so no entry of an older, longer image survives), from the first
byte to the last; then the device's MD5 of the region is compared with ours. A power cut in
between leaves the entries before the cut, maybe one cut short (its CRC fails, so
esp_secure_cert_mgr refuses it) and erased flash after: the old credentials are gone and the
new ones incomplete. verify (the MD5 at the end of write, and Device.verify's digests of what
the device holds: read, or confirmed by its MD5) reports it; writing again repairs it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from typing import Any, ClassVar

from provision.bundle import esp_partitions as ptab
from provision.bundle import esp_secure_cert as esc
from provision.bundle.model import CredentialSet, SlotType
from provision.dialects import TARGETS, mbedtls
from provision.dialects.base import (
    Capability,
    DeviceInfo,
    DialectProfile,
    Holdings,
    Progress,
    Refusal,
    SlotInfo,
    WriteResult,
    WritesDecodedBundles,
)
from provision.errors import DeviceError, InputError, PolicyError, ProvisionError
from provision.transport.base import Transport, transport_clock


def _esp_pack():  # type: ignore[no-untyped-def]
    # The image builder reads certificates with cryptography: loaded when a set is planned or
    # written, not when the dialect's profile is looked up (`provision device --help`).
    from provision.dialects import esp32_image

    return esp32_image


NAME = "esp32"
SEC_TAG_ENV = "PROVISION_ESP32_SEC_TAG"

# Why it lacks the capabilities it lacks, in the words errors and docs use.
CANNOT = {
    "keygen": "no on-device key generation through the serial bootloader: keys are made on "
    "the host",
    "atomic_commit": "the partition is erased, then written from its start; a power cut "
    "leaves a partial image that verify reports (write again to repair)",
    "psk": "esp_secure_cert has no entry for a PSK or PSK identity",
    "several_tags": "the partition holds one sec_tag",
}

_TYPE_FOR_SLOT = {
    SlotType.ROOT_CA: esc.TlvType.CA_CERT,
    SlotType.CLIENT_CERT: esc.TlvType.DEV_CERT,
    SlotType.CLIENT_KEY: esc.TlvType.PRIV_KEY,
}
_SLOT_FOR_TYPE: dict[int, SlotType] = {v: k for k, v in _TYPE_FOR_SLOT.items()}


# What a line reads of every board, at 115200 baud 87 us a byte: the partition's first 64
# bytes say whether it holds entries at all (a new board's does not: 64 bytes, not 2 KB);
# then 2 KB holds a P-256 set in PEM (1.5 KB). 512 bytes hold 15 partition entries and the
# MD5 entry (Espressif's examples have 4 to 9).
_PROBE_READ = 0x40

# The partition table bytes last read from a chip, and their decoding (any port: a line's
# boards share one table).
_last_table: tuple[bytes, list[ptab.Partition]] | None = None
_FIRST_READ = 0x800
_TABLE_FIRST_READ = 0x200


def _stops_within(damage: ProvisionError | None) -> bool:
    """A damaged entry ends the walk for good unless it was only cut short by the read."""
    return damage is None or damage.code != "esp_secure_cert.truncated"


def default_sec_tag() -> int:
    text = os.environ.get(SEC_TAG_ENV, "0")
    try:
        return int(text, 0)
    except ValueError:
        raise InputError(
            f"{SEC_TAG_ENV}={text!r}: give a number", code="input.esp32_sec_tag"
        ) from None


def stored_forms_of(
    entries: Iterable[esc.Entry], sec_tag: int
) -> dict[tuple[int, SlotType], bytes]:
    """(sec_tag, slot) → the bytes the device holds for it; all CA entries are one root_ca."""
    out: dict[tuple[int, SlotType], bytes] = {}
    for e in sorted(entries, key=lambda e: (e.type, e.subtype)):
        slot = _SLOT_FOR_TYPE.get(e.type)
        if slot is None:
            continue
        key = (sec_tag, slot)
        out[key] = out.get(key, b"") + e.data
    return out


def _refusals(credentials: CredentialSet) -> list[Refusal]:
    try:
        # The key is decrypted on the host (esp32_image says so): only Ed25519 is advice.
        advice = [r for r in mbedtls.advice(credentials) if r.code == "mbedtls.ed25519"]
        return _esp_pack().refusals(credentials) + advice
    except ProvisionError:
        return []  # unreadable content: the check reports it where it parses the item


def _stored_forms(credentials: CredentialSet) -> dict[tuple[int, SlotType], bytes]:
    if len(credentials.sec_tags) != 1:
        return {}
    esp_pack = _esp_pack()
    return stored_forms_of(esp_pack.entries_for(credentials), esp_pack.the_tag(credentials))


PROFILE = DialectProfile(
    dialect=NAME,
    target=TARGETS[NAME],
    description="ESP32 esp_secure_cert partition through esptool (one sec_tag, no atomic "
    "commit: verified by MD5 and digests)",
    slot_types=frozenset(_TYPE_FOR_SLOT) | {SlotType.KEY_PASSWORD},
    capabilities=frozenset({Capability.READ_BACK, Capability.SLOT_SIZES}),
    refusals=_refusals,
    stored_forms=_stored_forms,
    encodings="TLV entries: certificates PEM (NUL-terminated) or DER as packed; keys "
    "decrypted on the host",
    guarantee="not atomic: the partition is flashed in place, so a cut leaves its old "
    "image, its new one, or a partly written image whose entries list and verify report",
)


class Esp32Session(WritesDecodedBundles):
    name: ClassVar[str] = NAME
    profile: ClassVar[DialectProfile] = PROFILE
    CUT_RESYNC: ClassVar[bytes | None] = None  # whole lines only: nothing is ever cut

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = 2.0,
        retries: int = 5,
        trace: Any = None,
        sec_tag: int | None = None,
        stub: bool = True,
        baud: int | None = None,
    ) -> None:
        from provision.transport.esptool_link import EspLink

        self._transport = transport
        self.timeout = timeout
        self.retries = retries
        self.sec_tag = default_sec_tag() if sec_tag is None else sec_tag
        url = getattr(transport, "url", None) or f"{type(transport).__name__}"
        if trace is not None:
            trace.note("--", "esp32: esptool drives the link (frames are not traced)")
        # The ROM talks at 115200; on a real port the rate it was opened with is the one to
        # switch to (esptool's --baud), elsewhere `baud` if given.
        port = getattr(transport, "port", None)
        if baud is None and port is not None and "://" not in url:
            baud = getattr(port, "baudrate", None)
        self.link = EspLink(
            transport, name=url, stub=stub, baud=baud, connect_attempts=max(1, retries)
        )
        part = ptab.find(self._partition_table(), esc.PARTITION_LABEL)
        if part is None:
            raise DeviceError(
                f"no {esc.PARTITION_LABEL} partition in the chip's partition table (add "
                f"'{esc.PARTITION_LABEL}, 0x3F, , 0xD000, 0x2000, encrypted' to partitions.csv)",
                code="esp32.no_partition",
            )
        self.partition = part
        # The partition's first bytes as the host last saw them (read, or written and
        # confirmed by the device's MD5): a listing asks the device for the MD5 of that
        # region and reads again only if it differs. The stub's reads end in an MD5 too, so
        # this is as fresh as a read, for 30 bytes instead of kilobytes. A new board's
        # partition is erased: that is checked first (a line's every board), so only a board
        # with something in it has its partition read.
        self._known: bytes | None = b"\xff" * min(part.size, _PROBE_READ)
        self._known_entries: list[esc.Entry] | None = None  # what `_known` holds, decoded

    def _partition_table(self) -> list[ptab.Partition]:
        """The chip's partition table: the one the last board had if the device's MD5 of
        those bytes says it has it too (every board of a product does: 30 bytes on the wire
        instead of 0.6 KB read back, checked and acknowledged), else read."""
        global _last_table
        last = _last_table
        if last is not None:
            raw, table = last
            if self.link.md5(ptab.TABLE_OFFSET, len(raw)) == hashlib.md5(raw).digest():
                return table
        # Most tables are a few entries: read 0.5 KB, all of the table only if it goes on.
        raw = self.link.read_flash(ptab.TABLE_OFFSET, _TABLE_FIRST_READ)
        if not ptab.ends_within(raw):
            raw = self.link.read_flash(ptab.TABLE_OFFSET, ptab.TABLE_MAX)
        table = ptab.decode(raw)
        _last_table = (raw, table)
        return table

    @classmethod
    def probe(cls, transport: Transport, timeout: float) -> bool:
        """A ROM loader or stub answers SYNC with a response to command 0x08."""
        from provision.transport.esptool_link import SYNC_REPLY_START, sync_packet

        transport.write(sync_packet())
        seen = bytearray()
        clock = transport_clock(transport)
        end = clock() + min(timeout, 1.0)
        while clock() < end:
            seen += transport.read(4096, 0.1)
            if SYNC_REPLY_START in seen:
                return True
        return False

    # -- reading
    def _entries(self) -> list[esc.Entry]:
        """The entries esp_secure_cert_mgr can use: those before the first damaged one.

        Read from the start of the partition only as far as the entries go (64 bytes, then
        2 KB, then doubling): a P-256 set is 1.5 KB of the 8 KB partition, and the whole of
        it was two thirds of a line's device time at 115200 baud. Bytes seen before are
        checked by the device's MD5 of them instead of read again (a line lists a board
        three times before writing it and once after).
        """
        start, size = self.partition.offset, self.partition.size
        known = self._known
        if known is not None and self.link.md5(start, len(known)) == hashlib.md5(known).digest():
            if self._known_entries is None:
                self._known_entries = list(esc.walk(known)[0].entries)
            return list(self._known_entries)
        self._known = self._known_entries = None
        data = self.link.read_flash(start, min(size, _PROBE_READ))
        while True:
            decoded, damage = esc.walk(data)
            # The walk stopped on bytes that were read: where the device's reader stops too.
            inside = decoded.used + len(esc.MAGIC_BYTES) <= len(data)
            if len(data) >= size or (inside and _stops_within(damage)):
                self._known, self._known_entries = data, list(decoded.entries)
                return list(decoded.entries)
            more = max(len(data), _FIRST_READ - len(data))
            data += self.link.read_flash(start + len(data), min(size - len(data), more))

    def info(self) -> DeviceInfo:
        c = self.link.chip
        return DeviceInfo(
            NAME,
            c.mac,
            f"{c.description}, {'flasher stub' if c.stub else 'ROM loader'}",
            {
                "chip": c.chip,
                "mac": c.mac,
                "partition_offset": self.partition.offset,
                "partition_size": self.partition.size,
                "partition_encrypted": self.partition.encrypted,
                "sec_tag": self.sec_tag,
            },
        )

    def list(self) -> list[SlotInfo]:
        forms = stored_forms_of(self._entries(), self.sec_tag)
        return [
            SlotInfo(tag, slot, len(data), hashlib.sha256(data).digest())
            for (tag, slot), data in sorted(forms.items(), key=lambda kv: kv[0][1])
        ]

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        if slot_type.is_secret:
            raise PolicyError(
                f"{slot_type.label} cannot be read back from a device", code="device.secret_slot"
            )
        if sec_tag != self.sec_tag:
            raise DeviceError(
                f"sec_tag {sec_tag} is not on this device (it has {self.sec_tag})",
                code="device.not_found",
            )
        items = [
            esc.strip_item(e.data)[0]
            for e in sorted(self._entries(), key=lambda e: e.subtype)
            if e.type == _TYPE_FOR_SLOT[slot_type]
        ]
        if not items:
            raise DeviceError(
                f"sec_tag {sec_tag} {slot_type.label}: not on the device", code="device.not_found"
            )
        return b"".join(items)

    # -- writing
    @property
    def bytes_sent(self) -> int:
        return int(self.link.bytes_sent)

    def check_keygen(self, sec_tag: int, subject: str | None) -> None:
        raise PolicyError(f"esp32: {CANNOT['keygen']}", code="esp32.no_keygen")

    def _write_image(self, image: bytes, progress: Progress | None) -> float:
        clock = transport_clock(self._transport)
        started = clock()
        whole = esc.partition_image(image, self.partition.size)
        self._known = self._known_entries = None
        # Raises unless the device's MD5 of the partition is that of `whole`.
        self.link.write_flash(self.partition.offset, whole, progress)
        self._known = whole
        return clock() - started

    def write(
        self,
        credentials: CredentialSet,
        progress: Progress | None = None,
        *,
        held: Holdings | None = None,
    ) -> WriteResult:
        image, entries, _warnings = _esp_pack().build(
            credentials, partition_size=self.partition.size
        )
        tag = _esp_pack().the_tag(credentials)
        sent = self.link.bytes_sent
        seconds = self._write_image(image, progress)
        self.sec_tag = tag
        forms = stored_forms_of(entries, tag)
        written = tuple(
            SlotInfo(k[0], k[1], len(v), hashlib.sha256(v).digest()) for k, v in forms.items()
        )
        return WriteResult(written, self.link.bytes_sent - sent, seconds)

    def delete(self, sec_tag: int | None, slot_type: SlotType | None) -> None:
        if sec_tag is not None and sec_tag != self.sec_tag:
            return  # nothing of that tag here
        keep: list[esc.Entry] = []
        if slot_type is not None:
            keep = [
                e
                for e in self._entries()
                if e.type != esc.TlvType.INTEGRITY and _SLOT_FOR_TYPE.get(e.type) is not slot_type
            ]
        image = esc.encode(keep) if keep else b""
        self._write_image(image, None)

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        self.check_keygen(sec_tag, subject)
        return b""

    def close(self) -> None:
        self.link.close()
        self._transport.close()


SESSION = Esp32Session
