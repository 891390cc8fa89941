"""ESP-IDF's binary partition table: one construct definition, sans-IO.

Facts (ESP-IDF docs, "Partition Tables"; components/partition_table/gen_esp32part.py): the
table sits at 0x8000 (CONFIG_PARTITION_TABLE_OFFSET) and takes at most 0xC00 bytes. Each entry
is 32 bytes, little-endian: magic 0x50AA, type u8, subtype u8, offset u32, size u32, label
(16 bytes, NUL-padded), flags u32 (bit 0 encrypted, bit 1 read-only). An entry with magic
0xEBEB, 14 bytes 0xFF and the MD5 of the preceding entries follows them; erased flash (0xFF)
ends the table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from construct import Bytes, Const, ConstructError, Int8ul, Int16ul, Int32ul, PaddedString, Struct

from provision.errors import DeviceError

TABLE_OFFSET = 0x8000
TABLE_MAX = 0xC00
ENTRY_SIZE = 32
ENTRY_MAGIC = 0x50AA
MD5_MAGIC = 0xEBEB
FLAG_ENCRYPTED = 1
FLAG_READONLY = 2

PartitionEntry = Struct(
    "magic" / Const(ENTRY_MAGIC, Int16ul),
    "type" / Int8ul,
    "subtype" / Int8ul,
    "offset" / Int32ul,
    "size" / Int32ul,
    "label" / PaddedString(16, "ascii"),
    "flags" / Int32ul,
)

Md5Entry = Struct(
    "magic" / Const(MD5_MAGIC, Int16ul),
    "reserved" / Const(b"\xff" * 14),
    "md5" / Bytes(16),
)


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)


def encode(partitions: list[Partition]) -> bytes:
    body = b"".join(
        PartitionEntry.build(
            {
                "type": p.type,
                "subtype": p.subtype,
                "offset": p.offset,
                "size": p.size,
                "label": p.label,
                "flags": p.flags,
            }
        )
        for p in partitions
    )
    return body + Md5Entry.build({"md5": hashlib.md5(body).digest()})


def decode(table: bytes) -> list[Partition]:
    """Entries of a table read from flash; DeviceError when it is absent or corrupt."""
    out: list[Partition] = []
    pos = 0
    while pos + ENTRY_SIZE <= min(len(table), TABLE_MAX):
        magic = int.from_bytes(table[pos : pos + 2], "little")
        if magic == MD5_MAGIC:
            md5 = Md5Entry.parse(table[pos : pos + ENTRY_SIZE]).md5
            if md5 != hashlib.md5(table[:pos]).digest():
                raise DeviceError("the partition table's MD5 does not match its entries")
            return out
        if magic != ENTRY_MAGIC:
            break
        try:
            e = PartitionEntry.parse(table[pos : pos + ENTRY_SIZE])
        except (ConstructError, UnicodeDecodeError):
            raise DeviceError(f"partition table entry {len(out)} is malformed") from None
        out.append(Partition(e.label, e.type, e.subtype, e.offset, e.size, e.flags))
        pos += ENTRY_SIZE
    if not out:
        raise DeviceError(f"no partition table at 0x{TABLE_OFFSET:x} (is the flash erased?)")
    return out


def ends_within(table: bytes) -> bool:
    """Whether the table ends (an MD5 entry or erased flash) inside these first bytes of it:
    a device's table is read that far only, not all of TABLE_MAX."""
    pos = 0
    while pos + ENTRY_SIZE <= len(table):
        if int.from_bytes(table[pos : pos + 2], "little") != ENTRY_MAGIC:
            return True
        pos += ENTRY_SIZE
    return len(table) >= TABLE_MAX


def find(partitions: list[Partition], label: str) -> Partition | None:
    for p in partitions:
        if p.label == label:
            return p
    return None
