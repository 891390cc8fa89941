"""Espressif's legacy cust_flash layout of the esp_secure_cert partition: one construct
definition, sans-IO.

Facts, from esp_secure_cert_mgr (private_include/esp_secure_cert_config.h: the offsets,
slot sizes and `esp_secure_cert_metadata`; srcs/esp_secure_cert_read.c: how the firmware reads
it; Kconfig: ESP_SECURE_CERT_SUPPORT_LEGACY_FORMATS) and esp-secure-cert-tool 2.6.1
(esp_secure_cert/custflash_format.py, `--secure_cert_type cust_flash`):

- Fixed slots, not entries: 64 bytes of metadata at 0, the device certificate at 64 (2048
  bytes), the CA certificate at 64 + 2048 (4096 bytes), then either the private key (4096
  bytes; firmware built without the DS peripheral) or, with CONFIG_ESP_SECURE_CERT_DS_PERIPHERAL,
  the DS ciphertext (the chip's ESP_DS_C_LEN + 16 bytes) and its IV (16 + 16 bytes).
  Espressif's tool writes a 0x6000-byte image, 0xFF where no item is, and the partitions.csv
  line is `esp_secure_cert, 0x3F, , 0xD000, 0x6000, encrypted`.
- The metadata is the C struct `esp_secure_cert_metadata` with the compiler's natural
  alignment, little-endian: per item a CRC32 (u32) and a length (u16), padded to 4 bytes; the
  DS variant's IV item is followed by the RSA length in bits (u16), the eFuse key id (u8) and
  3 bytes of padding; then the magic word 0x12345678; zeros to 64 bytes. The magic word's
  position (24, or 36 with DS) says which variant an image is.
- The CRC is `esp_crc32_le(UINT32_MAX, item, length)`, i.e. zlib's `crc32(item, 0xFFFFFFFF)`
  (the TLV format's). Items are stored as in the TLV format: PEM with a terminating NUL, DER
  as is. The firmware returns `length` bytes from the slot's offset after checking the CRC.
- An absent CA certificate is length 0, CRC 0 (the firmware's CRC of nothing is 0xFFFFFFFF,
  so it reports the CA as tampered, i.e. unavailable) and a NUL at its slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import (
    Const,
    ConstructError,
    Int8ul,
    Int16ul,
    Int32ul,
    Padded,
    Padding,
    Struct,
)

from provision.bundle.esp_secure_cert import crc32  # the same esp_crc32_le as the TLV's
from provision.errors import BundleError

MAGIC = 0x12345678
IMAGE_SIZE = 0x6000
METADATA_SIZE = 64
DEV_CERT_OFFSET = METADATA_SIZE
DEV_CERT_SIZE = 2048
CA_CERT_OFFSET = DEV_CERT_OFFSET + DEV_CERT_SIZE
CA_CERT_SIZE = 4096
KEY_OFFSET = CA_CERT_OFFSET + CA_CERT_SIZE  # the private key, or the DS ciphertext
PRIV_KEY_SIZE = 4096
IV_SIZE = 16
IV_SLOT = IV_SIZE + 16
MAX_LENGTH = 0xFFFF

_Item = Struct("crc" / Int32ul, "length" / Int16ul, Padding(2))

PlainMetadata = Padded(
    METADATA_SIZE,
    Struct(
        "dev_cert" / _Item,
        "ca_cert" / _Item,
        "priv_key" / _Item,
        "magic" / Const(MAGIC, Int32ul),
    ),
)
DsMetadata = Padded(
    METADATA_SIZE,
    Struct(
        "dev_cert" / _Item,
        "ca_cert" / _Item,
        "ciphertext" / _Item,
        "iv_crc" / Int32ul,
        "iv_length" / Int16ul,
        "rsa_length" / Int16ul,  # bits
        "efuse_key_id" / Int8ul,
        Padding(3),
        "magic" / Const(MAGIC, Int32ul),
    ),
)
_MAGIC_BYTES = MAGIC.to_bytes(4, "little")
_PLAIN_MAGIC_AT = 24
_DS_MAGIC_AT = 36


def ds_ciphertext_slot(ds_c_len: int) -> int:
    """The ciphertext slot of a chip whose DS ciphertext (ESP_DS_C_LEN) is `ds_c_len` bytes."""
    return ds_c_len + 16


@dataclass(frozen=True)
class Ds:
    """The DS variant's key: the ciphertext for the chip's DS peripheral and what names it."""

    ciphertext: bytes
    iv: bytes
    rsa_bits: int
    efuse_key_id: int

    def __repr__(self) -> str:
        return f"Ds(rsa_bits={self.rsa_bits}, efuse_key_id={self.efuse_key_id})"


@dataclass(frozen=True)
class Image:
    """What a cust_flash image holds; `priv_key` (plain variant) xor `ds`."""

    dev_cert: bytes | None
    ca_cert: bytes | None = None
    priv_key: bytes | None = None
    ds: Ds | None = None

    def __repr__(self) -> str:
        # Key bytes never reach a log through repr().
        return (
            f"cust_flash.Image(dev_cert={len(self.dev_cert or b'')}, ca_cert="
            f"{len(self.ca_cert) if self.ca_cert is not None else None}, priv_key="
            f"{'set' if self.priv_key else None}, ds={self.ds!r})"
        )


@dataclass(frozen=True)
class Slot:
    name: str  # dev_cert, ca_cert, priv_key, ds_ciphertext, ds_iv
    offset: int
    capacity: int
    data: bytes


def _item(data: bytes | None) -> dict[str, int]:
    if not data:
        return {"crc": 0, "length": 0}
    return {"crc": crc32(data), "length": len(data)}


def slots(image: Image) -> list[Slot]:
    """Where each item goes (offset, the slot's size); an absent CA has no slot."""
    out = []
    if image.dev_cert:
        out.append(Slot("dev_cert", DEV_CERT_OFFSET, DEV_CERT_SIZE, image.dev_cert))
    if image.ca_cert:
        out.append(Slot("ca_cert", CA_CERT_OFFSET, CA_CERT_SIZE, image.ca_cert))
    if image.ds is not None:
        c = image.ds.ciphertext
        out.append(Slot("ds_ciphertext", KEY_OFFSET, ds_ciphertext_slot(len(c)), c))
        iv_offset = KEY_OFFSET + ds_ciphertext_slot(len(c))
        out.append(Slot("ds_iv", iv_offset, IV_SLOT, image.ds.iv))
    elif image.priv_key is not None:
        out.append(Slot("priv_key", KEY_OFFSET, PRIV_KEY_SIZE, image.priv_key))
    return out


def overflows(image: Image) -> list[Slot]:
    """The slots whose item is longer than the slot."""
    return [s for s in slots(image) if len(s.data) > s.capacity]


def encode(image: Image) -> bytes:
    """The 0x6000-byte image Espressif's tool writes. ValueError if an item does not fit its
    slot (see `overflows`) or the key is missing."""
    if (image.priv_key is None) == (image.ds is None) or not image.dev_cert:
        raise ValueError(
            "a cust_flash image holds a device certificate and either a private key or DS data"
        )
    too_big = overflows(image)
    if too_big:
        s = too_big[0]
        raise ValueError(
            f"cust_flash {s.name} of {len(s.data)} bytes (its slot holds {s.capacity})"
        )
    out = bytearray(b"\xff" * IMAGE_SIZE)
    if image.ds is not None:
        d = image.ds
        meta = DsMetadata.build(
            {
                "dev_cert": _item(image.dev_cert),
                "ca_cert": _item(image.ca_cert),
                "ciphertext": _item(d.ciphertext),
                "iv_crc": crc32(d.iv),
                "iv_length": len(d.iv),
                "rsa_length": d.rsa_bits,
                "efuse_key_id": d.efuse_key_id,
            }
        )
    else:
        meta = PlainMetadata.build(
            {
                "dev_cert": _item(image.dev_cert),
                "ca_cert": _item(image.ca_cert),
                "priv_key": _item(image.priv_key),
            }
        )
    out[:METADATA_SIZE] = meta
    if not image.ca_cert:
        out[CA_CERT_OFFSET] = 0  # an empty C string, as Espressif's tool means to write
    for s in slots(image):
        out[s.offset : s.offset + len(s.data)] = s.data
    return bytes(out)


def variant(data: bytes) -> str | None:
    """The variant, "plain" or "ds", by where the metadata's magic word is (zeros after it
    to the metadata's end); None: not a cust_flash image."""
    for kind, at in (("plain", _PLAIN_MAGIC_AT), ("ds", _DS_MAGIC_AT)):
        magic, tail = data[at : at + 4], data[at + 4 : METADATA_SIZE]
        if magic == _MAGIC_BYTES and tail == bytes(METADATA_SIZE - at - 4):
            return kind
    return None


def looks_like_image(head: bytes) -> bool:
    return variant(head[:METADATA_SIZE]) is not None


def _read(data: bytes, name: str, offset: int, capacity: int, item: dict) -> bytes:
    length, crc = item["length"], item["crc"]
    if length > capacity or offset + length > len(data):
        raise BundleError(
            f"cust_flash {name}: length {length} runs past its slot at 0x{offset:x}",
            code="cust_flash.bad_length",
        )
    body = data[offset : offset + length]
    if crc32(body) != crc:
        raise BundleError(
            f"cust_flash {name} at offset 0x{offset:x}: CRC32 mismatch",
            code="cust_flash.bad_crc",
        )
    return body


def decode(data: bytes) -> Image:
    """The items of a cust_flash image, each checked against its CRC as the firmware does;
    BundleError for what is not one or is damaged."""
    kind = variant(data)
    if kind is None:
        raise BundleError(
            "not a cust_flash image (no metadata magic word 0x12345678)",
            code="cust_flash.no_magic",
        )
    try:
        meta = (DsMetadata if kind == "ds" else PlainMetadata).parse(data[:METADATA_SIZE])
    except ConstructError:
        raise BundleError("cust_flash metadata is cut short", code="cust_flash.truncated") from None
    # A length of 0 is an absent item whatever its CRC (Espressif's tool writes 0 for a
    # missing CA, the CRC of nothing for a missing device certificate).
    dev = None
    if meta.dev_cert.length:
        dev = _read(data, "dev_cert", DEV_CERT_OFFSET, DEV_CERT_SIZE, meta.dev_cert)
    ca = None
    if meta.ca_cert.length:
        ca = _read(data, "ca_cert", CA_CERT_OFFSET, CA_CERT_SIZE, meta.ca_cert)
    if kind == "plain":
        key = _read(data, "priv_key", KEY_OFFSET, PRIV_KEY_SIZE, meta.priv_key)
        return Image(dev, ca, priv_key=key)
    length = meta.ciphertext.length
    c = _read(data, "ds_ciphertext", KEY_OFFSET, ds_ciphertext_slot(length), meta.ciphertext)
    iv_item = {"crc": meta.iv_crc, "length": meta.iv_length}
    iv = _read(data, "ds_iv", KEY_OFFSET + ds_ciphertext_slot(length), IV_SLOT, iv_item)
    return Image(dev, ca, ds=Ds(c, iv, meta.rsa_length, meta.efuse_key_id))
