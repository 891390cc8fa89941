"""Espressif's esp_secure_cert partition (TLV format): one construct definition, sans-IO.

Facts, from esp_secure_cert_mgr (private_include/esp_secure_cert_tlv_private.h,
include/esp_secure_cert_tlv_config.h, srcs/esp_secure_cert_tlv_read.c, docs/format.md) and
the PyPI package esp-secure-cert-tool 2.6 (esp_secure_cert/tlv_format_construct.py):

- The partition (type 0x3F, label "esp_secure_cert", 0xD000/0x2000 in Espressif's
  partitions.csv) is a run of TLV entries. Each is a 12-byte header (magic 0xBA5EBA11, flags,
  3 reserved zero bytes, type, subtype, length: little-endian), the data, zero padding up to a
  multiple of 16 bytes (the flash-encryption write alignment), and a CRC32 footer over header,
  data and padding.
- The CRC is the firmware's `esp_crc32_le(UINT32_MAX, ...)`, which is zlib's
  `crc32(data, 0xFFFFFFFF)` (both invert the seed on entry and the result on exit).
- The reader walks entries until a word that is not the magic (erased flash reads 0xFF), so
  nothing after the last entry may look like an entry: a device write fills the rest of the
  partition with 0xFF (see `partition_image`).
- PEM items are stored with a terminating NUL (mbedTLS wants it in the PEM length); DER as is.
  Espressif's tool re-serializes certificates through `cryptography` and private keys as
  "traditional OpenSSL" (SEC1 / PKCS#1), and by default appends an INTEGRITY entry holding the
  SHA-256 of every byte before it. We do the same, so our image equals theirs byte for byte.
- Private-key flags: bit 7 set / bit 6 clear = HMAC-encrypted key, bit 6 = HMAC-derived ECDSA
  key, bits 5..3 == 0b001 = key in the ECDSA peripheral. Plain keys have flags 0.
- Entry bodies with a fixed layout (esp_secure_cert_tlv_private.h, srcs/esp_secure_cert_tlv_read.c
  and esp-secure-cert-tool's TlvPartitionBuilder): DS_DATA is ESP-IDF's esp_ds_data_t (the RSA
  length as key bits / 32 - 1, signed 32-bit; a 16-byte IV; the DS ciphertext); DS_CONTEXT is
  esp_ds_data_ctx_t as stored (4 bytes where the firmware puts its pointer to the DS data, the
  eFuse key id, one pad byte, the RSA length in bits); SEC_CFG is the eFuse block of an
  ECDSA-peripheral key (key id + 4, i.e. EFUSE_BLK_KEY0 + id) and 39 reserved bytes; the
  HMAC_ECDSA_KEY_SALT entry is the PBKDF2 salt as it is; SIGNATURE_BLOCK is a version, the
  offset and length of the partition bytes it signs, the algorithm (0 RSA-3072, 1/2/3 ECDSA
  P-192/P-256/P-384), then the public key and signature.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from construct import (
    Bytes,
    Checksum,
    ChecksumError,
    Const,
    ConstructError,
    Default,
    GreedyBytes,
    Int8ul,
    Int16ul,
    Int32sl,
    Int32ul,
    Padding,
    RawCopy,
    Struct,
    this,
)

from provision.errors import BundleError

MAGIC = 0xBA5EBA11
MAGIC_BYTES = MAGIC.to_bytes(4, "little")
PARTITION_TYPE = 0x3F
PARTITION_LABEL = "esp_secure_cert"
DEFAULT_OFFSET = 0xD000
DEFAULT_SIZE = 0x2000
ALIGNMENT = 16
HEADER_SIZE = 12
FOOTER_SIZE = 4
MAX_DATA = 0xFFFF


class TlvType(IntEnum):
    CA_CERT = 0
    DEV_CERT = 1
    PRIV_KEY = 2
    DS_DATA = 3
    DS_CONTEXT = 4
    HMAC_ECDSA_KEY_SALT = 5
    SEC_CFG = 6
    TEE_SEC_STORAGE_KEY = 7
    SIGNATURE_BLOCK = 8
    INTEGRITY = 9
    END = 50
    USER_DATA_1 = 51
    USER_DATA_2 = 52
    USER_DATA_3 = 53
    USER_DATA_4 = 54
    USER_DATA_5 = 55

    @classmethod
    def label_of(cls, value: int) -> str:
        try:
            return cls(value).name.lower()
        except ValueError:
            return f"type_{value}"


# The private key entry's flags byte (esp_secure_cert_tlv_private.h).
FLAG_HMAC_ENCRYPTED = 0x80
FLAG_HMAC_ECDSA_DERIVED = 0x40
FLAG_ECDSA_PERIPHERAL = 0x08
_KEY_STORAGE_MASK = 0xC0
_KEY_PERIPHERAL_MASK = 0x38


def key_storage(flags: int) -> str:
    """How esp_secure_cert_mgr treats a private key entry with these flags."""
    if flags & _KEY_STORAGE_MASK == FLAG_HMAC_ENCRYPTED:
        return "hmac_encrypted"
    if flags & _KEY_STORAGE_MASK == FLAG_HMAC_ECDSA_DERIVED:
        return "hmac_derived_ecdsa"
    if flags & _KEY_PERIPHERAL_MASK == FLAG_ECDSA_PERIPHERAL:
        return "ecdsa_peripheral"
    return "plain"


def padding_for(length: int) -> int:
    return -length % ALIGNMENT


def crc32(data: bytes) -> int:
    return zlib.crc32(data, 0xFFFFFFFF)


_Body = Struct(
    "magic" / Const(MAGIC, Int32ul),
    "flags" / Default(Int8ul, 0),
    "reserved" / Default(Bytes(3), b"\x00\x00\x00"),
    "type" / Int8ul,
    "subtype" / Default(Int8ul, 0),
    "length" / Int16ul,
    "data" / Bytes(this.length),
    Padding(lambda ctx: padding_for(ctx.length)),
)

TlvEntry = Struct(
    "body" / RawCopy(_Body),
    "crc" / Checksum(Int32ul, crc32, this.body.data),
)


# Entry bodies (the data of one entry), each defined here once.
DsData = Struct(
    "rsa_length" / Int32sl,  # key bits / 32 - 1
    "iv" / Bytes(16),
    "c" / GreedyBytes,
)
DsContext = Struct(
    "reserved" / Default(Int32ul, 0),  # the firmware's pointer to the DS data, at run time
    "efuse_key_id" / Int8ul,
    "padding" / Default(Int8ul, 0),
    "rsa_length_bits" / Int16ul,
)
SecCfg = Struct(
    "priv_key_efuse_block" / Int8ul,  # EFUSE_BLK_KEY0 (4) + key id
    "reserved" / Default(Bytes(39), bytes(39)),
)
SignatureBlock = Struct(
    "version" / Int8ul,
    "reserved1" / Default(Bytes(3), bytes(3)),
    "offset" / Int32ul,
    "length" / Int32ul,
    "algorithm" / Int8ul,
    "reserved2" / Default(Bytes(3), bytes(3)),
    "key_and_signature" / GreedyBytes,
)
EFUSE_BLK_KEY0 = 4
SIGNATURE_ALGORITHMS = {0: "rsa3072", 1: "ecdsa192", 2: "ecdsa256", 3: "ecdsa384"}
# Fixed sizes the firmware reads without checking the entry's length.
BODY_SIZES: dict[int, int] = {
    TlvType.DS_CONTEXT: DsContext.sizeof(),
    TlvType.SEC_CFG: SecCfg.sizeof(),
}


def body_details(type_: int, data: bytes) -> dict[str, object]:
    """What the fixed-layout entries say (for `bundle inspect`); BundleError if an entry of
    these types does not have their layout."""
    bad = BundleError(
        f"esp_secure_cert {TlvType.label_of(type_)} entry of {len(data)} bytes does not have "
        "its layout",
        code="esp_secure_cert.bad_body",
    )
    size = BODY_SIZES.get(type_)
    if size is not None and len(data) != size:
        raise bad
    try:
        if type_ == TlvType.DS_DATA:
            d = DsData.parse(data)
            return {"rsa_bits": (d.rsa_length + 1) * 32, "ciphertext_size": len(d.c)}
        if type_ == TlvType.DS_CONTEXT:
            c = DsContext.parse(data)
            return {"efuse_key_id": c.efuse_key_id, "rsa_bits": c.rsa_length_bits}
        if type_ == TlvType.SEC_CFG:
            block = SecCfg.parse(data).priv_key_efuse_block
            return {"efuse_block": block, "efuse_key_id": block - EFUSE_BLK_KEY0}
        if type_ == TlvType.SIGNATURE_BLOCK:
            b = SignatureBlock.parse(data)
            return {
                "algorithm": SIGNATURE_ALGORITHMS.get(b.algorithm, f"unknown ({b.algorithm})"),
                "signed_offset": b.offset,
                "signed_length": b.length,
            }
    except ConstructError:
        raise bad from None
    return {}


@dataclass(frozen=True)
class Entry:
    """One TLV entry: what esp_secure_cert_mgr looks up by (type, subtype)."""

    type: int
    subtype: int
    data: bytes
    flags: int = 0

    @property
    def size(self) -> int:
        return HEADER_SIZE + len(self.data) + padding_for(len(self.data)) + FOOTER_SIZE

    def __repr__(self) -> str:
        # Key bytes never reach a log through repr().
        return (
            f"Entry(type={TlvType.label_of(self.type)}, subtype={self.subtype}, "
            f"flags=0x{self.flags:02x}, size={len(self.data)})"
        )


@dataclass(frozen=True)
class Decoded:
    entries: tuple[Entry, ...]
    offsets: tuple[int, ...]
    # Bytes taken by the entries; everything after is not read by the device.
    used: int
    # True/False when an INTEGRITY entry is present and its SHA-256 matches or not.
    integrity: bool | None


def encode_entry(entry: Entry) -> bytes:
    if not 0 <= entry.type <= 0xFF or not 0 <= entry.subtype <= 0xFF:
        raise ValueError(f"TLV type {entry.type} / subtype {entry.subtype} out of range")
    if len(entry.data) > MAX_DATA:
        raise ValueError(f"TLV data of {len(entry.data)} bytes (at most {MAX_DATA})")
    body = {
        "flags": entry.flags,
        "type": entry.type,
        "subtype": entry.subtype,
        "length": len(entry.data),
        "data": entry.data,
    }
    return TlvEntry.build({"body": {"value": body}})


def encode(entries: Sequence[Entry], *, integrity: bool = True) -> bytes:
    """The image: the entries in order and, by default, an INTEGRITY entry (SHA-256 of all
    bytes before it), as esp-secure-cert-tool writes it. Not padded to the partition size."""
    image = b"".join(encode_entry(e) for e in entries)
    if integrity:
        image += encode_entry(Entry(TlvType.INTEGRITY, 0, hashlib.sha256(image).digest()))
    return image


def partition_image(image: bytes, size: int = DEFAULT_SIZE) -> bytes:
    """The whole partition: the image, then erased flash (0xFF), so that no entry of an older,
    longer image survives behind the new one for the device's reader to find."""
    if len(image) > size:
        raise ValueError(f"image of {len(image)} bytes does not fit a {size}-byte partition")
    return image + b"\xff" * (size - len(image))


def looks_like_image(data: bytes) -> bool:
    return data[:4] == MAGIC_BYTES


def walk(data: bytes) -> tuple[Decoded, BundleError | None]:
    """Entries from an image or a whole partition read back from flash, as the device's
    reader walks them: up to the first word that is not the magic, or the first damaged
    entry (CRC mismatch, cut short), which is returned as the error next to the entries
    before it (what a write cut short leaves)."""
    entries: list[Entry] = []
    offsets: list[int] = []
    integrity: bool | None = None
    offset = 0
    error: BundleError | None = None
    while data[offset : offset + 4] == MAGIC_BYTES:
        try:
            parsed = TlvEntry.parse(data[offset:])
        except ChecksumError:
            error = BundleError(
                f"esp_secure_cert entry at offset 0x{offset:x}: CRC32 mismatch",
                code="esp_secure_cert.bad_crc",
            )
            break
        except ConstructError:
            error = BundleError(
                f"esp_secure_cert entry at offset 0x{offset:x} is cut short",
                code="esp_secure_cert.truncated",
            )
            break
        body = parsed.body.value
        entry = Entry(body.type, body.subtype, bytes(body.data), body.flags)
        if entry.type == TlvType.INTEGRITY:
            integrity = hashlib.sha256(data[:offset]).digest() == entry.data
        entries.append(entry)
        offsets.append(offset)
        offset += len(parsed.body.data) + FOOTER_SIZE
    return Decoded(tuple(entries), tuple(offsets), offset, integrity), error


def decode(data: bytes) -> Decoded:
    """Like `walk`, but a damaged entry or an image without entries raises BundleError."""
    decoded, error = walk(data)
    if error is not None:
        raise error
    if not decoded.entries:
        raise BundleError(
            "not an esp_secure_cert image (no TLV entry at its start)",
            code="esp_secure_cert.no_entries",
        )
    return decoded


def item_bytes(data: bytes, pem: bool) -> bytes:
    """How esp_secure_cert_mgr wants an item stored: PEM with its NUL, DER as is."""
    return data + b"\x00" if pem else data


def strip_item(data: bytes) -> tuple[bytes, bool]:
    """An item's bytes without the PEM terminator, and whether it is PEM."""
    if data.startswith(b"-----BEGIN "):
        return data.rstrip(b"\x00"), True
    return data, False
