"""The bundle wire format, defined once with construct. Byte-level docs: docs/bundle-format.md.

    header   magic "PRVB" | version u8 | flags u8 | device_id u8-prefixed UTF-8 | count u16
    record   sec_tag u32 | slot u8 | encoding u8 | flags u16 | length u32 | payload | crc32 u32
    trailer  sha256 of all bytes before it [| key_id 8 bytes | ECDSA P-256 r||s 64 bytes]

All integers little-endian. A change here is a version bump and a new golden vector.
This module does no IO and no cryptography beyond digests: signing lives in provision.pki.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from construct import (
    Array,
    Bytes,
    Check,
    Checksum,
    ChecksumError,
    Const,
    ConstructError,
    GreedyBytes,
    If,
    Int8ul,
    Int16ul,
    Int32ul,
    PascalString,
    Prefixed,
    RawCopy,
    Struct,
    Terminated,
    this,
)

from provision.bundle.model import (
    MAX_SEC_TAG,
    CredentialSet,
    Encoding,
    Slot,
    SlotFlags,
    SlotType,
)
from provision.errors import BundleError, InputError

MAGIC = b"PRVB"
FORMAT_VERSION = 1
FLAG_SIGNED = 0x01
MAX_RECORDS = 64
MAX_PAYLOAD = 16 * 1024
MAX_DEVICE_ID = 64
KEY_ID_SIZE = 8
SIGNATURE_SIZE = 64
DIGEST_SIZE = 32

RecordBody = Struct(
    "sec_tag" / Int32ul,
    Check(this.sec_tag <= MAX_SEC_TAG),
    "slot" / Int8ul,
    "encoding" / Int8ul,
    "flags" / Int16ul,
    "length" / Int32ul,
    Check(this.length <= MAX_PAYLOAD),
    "payload" / Bytes(this.length),
)

Record = Struct(
    "body" / RawCopy(RecordBody),
    "crc32" / Checksum(Int32ul, lambda data: zlib.crc32(data), this.body.data),
)

Header = Struct(
    "magic" / Const(MAGIC),
    "version" / Int8ul,
    Check(this.version == FORMAT_VERSION),
    "flags" / Int8ul,
    "device_id" / PascalString(Int8ul, "utf8"),
    "record_count" / Int16ul,
    Check(this.record_count <= MAX_RECORDS),
)

BundleBody = Struct(
    "header" / Header,
    "records" / Array(this.header.record_count, Record),
)

Signature = Struct(
    "key_id" / Bytes(KEY_ID_SIZE),
    "signature" / Bytes(SIGNATURE_SIZE),
)

Bundle = Struct(
    "body" / RawCopy(BundleBody),
    "sha256"
    / Checksum(Bytes(DIGEST_SIZE), lambda data: hashlib.sha256(data).digest(), this.body.data),
    "signature" / If(this.body.value.header.flags & FLAG_SIGNED, Signature),
    Terminated,
)

# Unused but kept importable for tools that want just the length-prefixed helper.
_Payload = Prefixed(Int32ul, GreedyBytes)


@dataclass(frozen=True)
class BundleSignature:
    key_id: bytes
    signature: bytes  # raw r||s, 32 bytes each, big-endian


@dataclass(frozen=True)
class DecodedBundle:
    credentials: CredentialSet
    digest: bytes  # SHA-256 over header and records: what a signature covers
    signature: BundleSignature | None


def _body_bytes(credentials: CredentialSet, signed: bool) -> bytes:
    if len(credentials) > MAX_RECORDS:
        raise InputError(
            f"too many items: {len(credentials)} (a bundle holds at most {MAX_RECORDS})"
        )
    device_id = credentials.device_id or ""
    if len(device_id.encode()) > MAX_DEVICE_ID:
        raise InputError(f"device id longer than {MAX_DEVICE_ID} bytes")
    for slot in credentials:
        if len(slot.data) > MAX_PAYLOAD:
            raise InputError(
                f"{slot.type.label} in sec_tag {slot.sec_tag} is {len(slot.data)} bytes "
                f"(a bundle item holds at most {MAX_PAYLOAD})"
            )
    return BundleBody.build(
        {
            "header": {
                "version": FORMAT_VERSION,
                "flags": FLAG_SIGNED if signed else 0,
                "device_id": device_id,
                "record_count": len(credentials),
            },
            "records": [
                {
                    "body": {
                        "value": {
                            "sec_tag": s.sec_tag,
                            "slot": int(s.type),
                            "encoding": int(s.encoding),
                            "flags": int(s.flags),
                            "length": len(s.data),
                            "payload": s.data,
                        }
                    }
                }
                for s in credentials
            ],
        }
    )


def signing_digest(credentials: CredentialSet) -> bytes:
    """The SHA-256 a signed bundle's signature covers (header with the signed flag set)."""
    return hashlib.sha256(_body_bytes(credentials, signed=True)).digest()


def encode(credentials: CredentialSet, signature: BundleSignature | None = None) -> bytes:
    """Build bundle bytes. Same credentials (and signature) → same bytes."""
    body = _body_bytes(credentials, signed=signature is not None)
    out = body + hashlib.sha256(body).digest()
    if signature is not None:
        if len(signature.key_id) != KEY_ID_SIZE or len(signature.signature) != SIGNATURE_SIZE:
            raise InputError("signature must be an 8-byte key id and a 64-byte r||s value")
        out += signature.key_id + signature.signature
    return out


def _explain(err: ConstructError, data: bytes) -> str:
    path = getattr(err, "path", "") or ""
    path = path.replace("(parsing) -> ", "").replace(" -> ", ".")
    if isinstance(err, ChecksumError):
        if "crc32" in path:
            return f"record CRC32 mismatch ({path})"
        return "SHA-256 digest mismatch: the bundle was altered or corrupted"
    text = str(err).split("\n")[0]
    if "Terminated" in text or "expected end of stream" in text:
        return "trailing bytes after the bundle"
    if "this.sec_tag" in text:
        return f"sec_tag out of range in {path}"
    if "this.length" in text:
        return f"item larger than {MAX_PAYLOAD} bytes in {path}"
    if "this.record_count" in text:
        return f"more than {MAX_RECORDS} records"
    if "stream read less than specified amount" in text or "StreamError" in type(err).__name__:
        return f"truncated bundle ({len(data)} bytes; ran out while reading {path or 'header'})"
    return f"malformed bundle at {path or 'start'}: {text}"


def decode(data: bytes) -> DecodedBundle:
    """Parse and validate bundle bytes; raise BundleError with a one-line reason.

    Uses the checked (non-compiled) parser: bundles come from files and devices.
    """
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BundleError("not a provision bundle (bad magic)")
    if len(data) < len(MAGIC) + 1:
        raise BundleError("truncated bundle (no version byte)")
    if data[len(MAGIC)] != FORMAT_VERSION:
        raise BundleError(
            f"unsupported bundle format version {data[len(MAGIC)]} "
            f"(this tool reads {FORMAT_VERSION})"
        )
    try:
        parsed = Bundle.parse(data)
    except ConstructError as err:
        raise BundleError(_explain(err, data)) from None
    header = parsed.body.value.header
    slots = []
    try:
        for rec in parsed.body.value.records:
            v = rec.body.value
            try:
                slot_type = SlotType(v.slot)
            except ValueError:
                raise BundleError(f"unknown slot type {v.slot} in sec_tag {v.sec_tag}") from None
            try:
                encoding = Encoding(v.encoding)
            except ValueError:
                raise BundleError(f"unknown encoding {v.encoding} in sec_tag {v.sec_tag}") from None
            slots.append(Slot(v.sec_tag, slot_type, encoding, bytes(v.payload), SlotFlags(v.flags)))
        credentials = CredentialSet(tuple(slots), header.device_id or None)
    except InputError as err:
        raise BundleError(err.message) from None
    if parsed.body.value.header.flags & ~FLAG_SIGNED:
        raise BundleError(f"unknown header flags 0x{header.flags:02x}")
    signature = None
    if parsed.signature is not None:
        signature = BundleSignature(
            bytes(parsed.signature.key_id), bytes(parsed.signature.signature)
        )
    # Canonical order is part of the format: a reordered bundle is not one we wrote.
    body = parsed.body.data
    if _body_bytes(credentials, signed=signature is not None) != body:
        raise BundleError("records are not in canonical order or not in canonical form")
    return DecodedBundle(credentials, bytes(parsed.sha256), signature)
