"""The bundle wire format, defined once with construct. Byte-level docs: docs/bundle-format.md.

    header   magic "PRVB" | version u8 | flags u8 | device_id u8-prefixed ASCII | count u16
    record   sec_tag u32 | slot u8 | encoding u8 | flags u16 | length u32 | payload | crc32 u32
    trailer  sha256 of all bytes before it [| key_id 8 bytes | ECDSA P-256 r||s 64 bytes]

All integers little-endian. A change here is a version bump and a new golden vector.
This module does no IO and no cryptography beyond digests: signing lives in provision.pki.

Every rule a valid bundle obeys (limits, known slot types, allowed encodings, flags) is a
`Rule` inside the construct definition, so `Bundle` alone says what a bundle is.

- `build_checked()` / `decode_checked()` run the plain (checked) construct builder and
  parser. They are the reference, and `decode_checked()` is what explains a bad bundle:
  `decode()` falls back to it to name the failing field and offset.
- `encode()` packs with `struct.Struct`s derived from the construct fields (`_packer`):
  same order, widths and byte order, read off the definition, not restated. construct's
  own compiled builder spends most of its time creating containers (~3x slower here).
- `decode()` runs construct's compiled parser. construct's docs warn that compiled parsers
  take shortcuts (no length check on reads), so it is fenced: the SHA-256 must match before
  it runs; every rule, every CRC (zlib) and the exact end of data are checked after it; and
  re-encoding the decoded set must give the very same bytes (trezor's sanity check).
  Anything less and the checked parser produces the error.

Tests and hypothesis hold the fast paths to the checked ones on valid and invalid input.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from construct import (
    Array,
    Bytes,
    CheckError,
    Checksum,
    ChecksumError,
    Const,
    ConstError,
    Construct,
    ConstructError,
    FormatField,
    If,
    Int8ul,
    Int16ul,
    Int32ul,
    RawCopy,
    Rebuild,
    StreamError,
    Struct,
    Terminated,
    len_,
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
from provision.errors import BundleError, InputError, PolicyError

MAGIC = b"PRVB"
FORMAT_VERSION = 1
FLAG_SIGNED = 0x01
HEADER_FLAGS = FLAG_SIGNED
MAX_RECORDS = 64
MAX_PAYLOAD = 16 * 1024
MAX_DEVICE_ID = 64
KEY_ID_SIZE = 8
SIGNATURE_SIZE = 64
DIGEST_SIZE = 32
RECORD_OVERHEAD = 16  # sec_tag 4 + slot 1 + encoding 1 + flags 2 + length 4 + crc32 4
# magic 4 + version 1 + flags 1 + device id length 1 + record count 2
HEADER_FIXED = 9
MIN_BUNDLE = HEADER_FIXED + DIGEST_SIZE

# Which encodings each slot may carry. Certificates and keys are DER or PEM as the device
# wants them; passwords, PSKs and identities are opaque bytes.
ALLOWED_ENCODINGS: dict[SlotType, frozenset[Encoding]] = {
    SlotType.ROOT_CA: frozenset({Encoding.DER, Encoding.PEM}),
    SlotType.CLIENT_CERT: frozenset({Encoding.DER, Encoding.PEM}),
    SlotType.CLIENT_KEY: frozenset({Encoding.DER, Encoding.PEM}),
    SlotType.KEY_PASSWORD: frozenset({Encoding.RAW}),
    SlotType.PSK: frozenset({Encoding.RAW}),
    SlotType.PSK_IDENTITY: frozenset({Encoding.RAW}),
}
# Which record flags each slot may carry: only a client_key can be encrypted.
ALLOWED_FLAGS: dict[SlotType, int] = {t: 0 for t in SlotType} | {
    SlotType.CLIENT_KEY: int(SlotFlags.ENCRYPTED)
}
_SLOT_BY_VALUE = {int(t): t for t in SlotType}
_SLOT_VALUES = frozenset(_SLOT_BY_VALUE)
_ENCODINGS_BY_SLOT = {int(t): frozenset(int(e) for e in ALLOWED_ENCODINGS[t]) for t in SlotType}
_FLAGS_BY_SLOT = {int(t): int(f) for t, f in ALLOWED_FLAGS.items()}
_ENCODING_BY_VALUE = {int(e): e for e in Encoding}
# Every record flag value a rule lets through (only client_key may carry ENCRYPTED).
_FLAGS_BY_VALUE = {0: SlotFlags.NONE, 1: SlotFlags.ENCRYPTED}


# A failed rule: (stable code for --json and the C stub, one-line reason).
Fault = tuple[str, str]


class RuleError(CheckError):
    """A `Rule` failed; `reason` is the one-line explanation without construct's path."""

    def __init__(self, fault: Fault, path: str | None = None) -> None:
        super().__init__(fault[1], path=path)
        self.code, self.reason = fault


class Rule(Construct):
    """A validity rule inside the definition: `fault(context)` is None when the rule holds,
    else a Fault. Reads and writes nothing.

    The compiled twin is built without rules; `_decode_fast` calls the same fault
    functions on the parsed values, so each rule is written once.
    """

    def __init__(self, fault: Callable[[Any], Fault | None]) -> None:
        super().__init__()
        self.fault = fault
        self.flagbuildnone = True

    def _parse(self, stream: Any, context: Any, path: str) -> None:
        fault = self.fault(context)
        if fault is not None:
            raise RuleError(fault, path=path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> None:
        self._parse(stream, context, path)

    def _sizeof(self, context: Any, path: str) -> int:
        return 0


_PRINTABLE = re.compile(rb"[\x21-\x7e]*")


def _printable_ascii(data: bytes) -> bool:
    return _PRINTABLE.fullmatch(data) is not None


def _version_fault(c: Any) -> Fault | None:
    if c["version"] != FORMAT_VERSION:
        return (
            "bundle.version",
            f"unsupported bundle format version {c['version']} (this tool reads {FORMAT_VERSION})",
        )
    return None


def _header_fault(c: Any) -> Fault | None:
    if c["flags"] & ~HEADER_FLAGS:
        return ("bundle.flags", f"unknown header flags 0x{c['flags']:02x}")
    if c["device_id_length"] > MAX_DEVICE_ID:
        return (
            "bundle.device_id",
            f"device id is {c['device_id_length']} bytes (at most {MAX_DEVICE_ID})",
        )
    if not _printable_ascii(c["device_id"]):
        return ("bundle.device_id", "device id must be printable ASCII without spaces")
    if c["record_count"] > MAX_RECORDS:
        return (
            "bundle.count",
            f"{c['record_count']} records (a bundle holds at most {MAX_RECORDS})",
        )
    return None


def _record_fault(c: Any) -> Fault | None:
    tag = c["sec_tag"]
    if tag > MAX_SEC_TAG:
        return ("bundle.sec_tag", f"sec_tag {tag} out of range (0..{MAX_SEC_TAG})")
    if c["slot"] not in _SLOT_VALUES:
        return ("bundle.slot", f"unknown slot type {c['slot']} in sec_tag {tag}")
    slot = _SLOT_BY_VALUE[c["slot"]]
    if c["encoding"] not in _ENCODINGS_BY_SLOT[c["slot"]]:
        return (
            "bundle.encoding",
            f"{slot.label} in sec_tag {tag}: encoding {c['encoding']} not allowed",
        )
    if c["flags"] & ~_FLAGS_BY_SLOT[c["slot"]]:
        return (
            "bundle.record_flags",
            f"{slot.label} in sec_tag {tag}: record flags 0x{c['flags']:04x} not allowed",
        )
    if not 1 <= c["length"] <= MAX_PAYLOAD:
        return (
            "bundle.length",
            f"{slot.label} in sec_tag {tag} is {c['length']} bytes "
            f"(an item holds 1..{MAX_PAYLOAD})",
        )
    return None


def _layout(checked: bool) -> tuple[Struct, Struct, Struct, Struct]:
    """The format's fields, in order. `checked=False` gives the twin for compile()."""

    def rule(fault: Callable[[Any], Fault | None]) -> list[Rule]:
        return [Rule(fault)] if checked else []

    record_body = Struct(
        "sec_tag" / Int32ul,
        "slot" / Int8ul,
        "encoding" / Int8ul,
        "flags" / Int16ul,
        "length" / Rebuild(Int32ul, len_(this.payload)),
        *rule(_record_fault),
        "payload" / Bytes(this.length),
    )
    # The CRC lets a device reject a damaged record before the whole bundle has arrived.
    if checked:
        record = Struct(
            "body" / RawCopy(record_body),
            "crc32" / Checksum(Int32ul, lambda data: zlib.crc32(data), this.body.data),
        )
    else:
        # Flat: one construct Container per record instead of two keeps the twin fast.
        record = Struct(*record_body.subcons, "crc32" / Int32ul)
    header = Struct(
        "magic" / Const(MAGIC),
        "version" / Int8ul,
        *rule(_version_fault),
        "flags" / Int8ul,
        "device_id_length" / Rebuild(Int8ul, len_(this.device_id)),
        "device_id" / Bytes(this.device_id_length),
        "record_count" / Int16ul,
        *rule(_header_fault),
    )
    if checked:
        body = Struct("header" / header, "records" / Array(this.header.record_count, record))
    else:
        body = Struct(*header.subcons, "records" / Array(this.record_count, record))
    return record_body, record, header, body


RecordBody, Record, Header, BundleBody = _layout(checked=True)

Signature = Struct(
    "key_id" / Bytes(KEY_ID_SIZE),
    "signature" / Bytes(SIGNATURE_SIZE),
)

# The whole format in one definition: this is what docs/bundle-format.md describes.
Bundle = Struct(
    "body" / RawCopy(BundleBody),
    "sha256"
    / Checksum(Bytes(DIGEST_SIZE), lambda data: hashlib.sha256(data).digest(), this.body.data),
    "signature" / If(this.body.value.header.flags & FLAG_SIGNED, Signature),
    Terminated,
)

# The compiled twin for `decode()`: no rules, and its CRC is a plain field that `decode()`
# checks with zlib (see the module docstring).
_BodyFast = _layout(checked=False)[3].compile()


@dataclass(frozen=True)
class BundleSignature:
    key_id: bytes
    signature: bytes  # raw r||s, 32 bytes each, big-endian

    def __post_init__(self) -> None:
        if len(self.key_id) != KEY_ID_SIZE or len(self.signature) != SIGNATURE_SIZE:
            raise InputError(
                f"a bundle signature is a {KEY_ID_SIZE}-byte key id and a "
                f"{SIGNATURE_SIZE}-byte r||s value"
            )


@dataclass(frozen=True)
class DecodedBundle:
    credentials: CredentialSet
    digest: bytes  # SHA-256 over header and records: what a signature covers
    signature: BundleSignature | None
    size: int

    @property
    def signed(self) -> bool:
        return self.signature is not None


# --- building ------------------------------------------------------------------------


def _check_limits(credentials: CredentialSet) -> bytes:
    """Refuse what the format cannot carry, with the item named; return the device id bytes."""
    if len(credentials) > MAX_RECORDS:
        raise PolicyError(
            f"too many items: {len(credentials)} (a bundle holds at most {MAX_RECORDS})"
        )
    device_id = b""
    if credentials.device_id is not None:
        try:
            device_id = credentials.device_id.encode("ascii")
        except UnicodeEncodeError:
            raise InputError(
                f"device id {credentials.device_id!r} must be printable ASCII without spaces"
            ) from None
        if not device_id:
            raise InputError("device id is empty (leave it out instead)")
        if len(device_id) > MAX_DEVICE_ID:
            raise PolicyError(
                f"device id is {len(device_id)} bytes (a bundle holds at most {MAX_DEVICE_ID})"
            )
        if not _printable_ascii(device_id):
            raise InputError(
                f"device id {credentials.device_id!r} must be printable ASCII without spaces"
            )
    for slot in credentials.slots:
        # Plain ints: Enum hashing and IntFlag operators are Python-level and slow here.
        slot_type = int(slot.type)
        if not 1 <= len(slot.data) <= MAX_PAYLOAD:
            raise PolicyError(
                f"{slot.type.label} in sec_tag {slot.sec_tag} is {len(slot.data)} bytes "
                f"(a bundle item holds 1..{MAX_PAYLOAD})"
            )
        if int(slot.encoding) not in _ENCODINGS_BY_SLOT[slot_type]:
            allowed = "/".join(sorted(e.label for e in ALLOWED_ENCODINGS[slot.type]))
            raise InputError(
                f"{slot.type.label} in sec_tag {slot.sec_tag}: encoding {slot.encoding.label} "
                f"not allowed ({allowed})"
            )
        if int(slot.flags) & ~_FLAGS_BY_SLOT[slot_type]:
            raise InputError(
                f"{slot.type.label} in sec_tag {slot.sec_tag}: flags {int(slot.flags):#x} "
                "not allowed"
            )
    return device_id


def _packer(layout: Struct, first: str, last: str) -> struct.Struct:
    """A struct.Struct for the fixed-width fields `first`..`last` of a construct layout.

    The fast builder's only knowledge of the layout comes from here: field order, widths
    and byte order are read off the construct definition, never restated. Rules in the run
    are skipped (the builder validates first, see _check_limits).
    """
    names = [sc.name for sc in layout.subcons]
    fmt = "<"
    for sc in layout.subcons[names.index(first) : names.index(last) + 1]:
        if isinstance(sc, Rule):
            continue
        inner = sc.subcon  # "name" / field wraps the field in Renamed
        if isinstance(inner, Rebuild):
            inner = inner.subcon
        elif isinstance(inner, Checksum):
            inner = inner.checksumfield
        if isinstance(inner, Const):
            fmt += f"{len(inner.value)}s"
        elif isinstance(inner, FormatField) and inner.fmtstr[0] == "<":
            fmt += inner.fmtstr[1:]
        else:  # pragma: no cover - a layout change the fast builder cannot follow
            raise TypeError(f"field {sc.name!r} is not fixed-width little-endian")
    return struct.Struct(fmt)


# Header: magic | version | flags | device_id_length, then device_id, then record_count.
_HEADER_HEAD = _packer(Header, "magic", "device_id_length")
_HEADER_TAIL = _packer(Header, "record_count", "record_count")
# Record: sec_tag | slot | encoding | flags | length, then payload, then the CRC.
_RECORD_HEAD = _packer(RecordBody, "sec_tag", "length")
_CRC = _packer(Record, "crc32", "crc32")
assert _HEADER_HEAD.size + _HEADER_TAIL.size == HEADER_FIXED
assert _RECORD_HEAD.size + _CRC.size == RECORD_OVERHEAD


@dataclass(frozen=True)
class RecordSpan:
    """Where one record's payload lies in a bundle (`start`, `length` bytes)."""

    sec_tag: int
    slot: int
    start: int
    length: int


def record_spans(prefix: bytes | memoryview) -> list[RecordSpan]:
    """The records whose headers lie within `prefix`, the first bytes of a bundle, unchecked.

    For a receiver that acts on records while the rest is still arriving (a device staging
    payloads in flash); `decode()` still decides, once everything is there, whether the
    bundle is valid. Garbage yields nonsense spans or none, never an exception."""
    spans: list[RecordSpan] = []
    if len(prefix) < _HEADER_HEAD.size:
        return spans
    *_, id_len = _HEADER_HEAD.unpack_from(prefix, 0)
    pos = _HEADER_HEAD.size + id_len
    if len(prefix) < pos + _HEADER_TAIL.size:
        return spans
    (count,) = _HEADER_TAIL.unpack_from(prefix, pos)
    pos += _HEADER_TAIL.size
    for _ in range(min(count, MAX_RECORDS)):
        if len(prefix) < pos + _RECORD_HEAD.size:
            break
        sec_tag, slot, _encoding, _flags, length = _RECORD_HEAD.unpack_from(prefix, pos)
        pos += _RECORD_HEAD.size
        spans.append(RecordSpan(sec_tag, slot, pos, length))
        pos += length + _CRC.size
    return spans


def _body_bytes(credentials: CredentialSet, signed: bool, device_id: bytes | None = None) -> bytes:
    """Header and records, built from packers derived from the construct layout.

    Must equal `build_checked()` byte for byte; the tests (and hypothesis) hold it to that.
    """
    if device_id is None:
        device_id = _check_limits(credentials)
    slots = credentials.slots
    parts = [
        _HEADER_HEAD.pack(MAGIC, FORMAT_VERSION, FLAG_SIGNED if signed else 0, len(device_id)),
        device_id,
        _HEADER_TAIL.pack(len(slots)),
    ]
    pack_head, pack_crc, crc32 = _RECORD_HEAD.pack, _CRC.pack, zlib.crc32
    for s in slots:
        data = s.data
        head = pack_head(s.sec_tag, s.type, s.encoding, s.flags, len(data))
        parts += (head, data, pack_crc(crc32(data, crc32(head))))
    return b"".join(parts)


def signing_digest(credentials: CredentialSet) -> bytes:
    """The SHA-256 a signed bundle's signature covers (header with the signed flag set)."""
    return hashlib.sha256(_body_bytes(credentials, signed=True)).digest()


def encode(credentials: CredentialSet, signature: BundleSignature | None = None) -> bytes:
    """Build bundle bytes. Same credentials (and signature) → same bytes.

    Raises PolicyError for what exceeds a limit, InputError for what the format cannot say.
    """
    body = _body_bytes(credentials, signed=signature is not None)
    out = body + hashlib.sha256(body).digest()
    if signature is not None:
        out += signature.key_id + signature.signature
    return out


def encode_signed(credentials: CredentialSet, sign: Callable[[bytes], BundleSignature]) -> bytes:
    """Build a signed bundle; `sign` gets the 32-byte digest and returns the signature."""
    body = _body_bytes(credentials, signed=True)
    digest = hashlib.sha256(body).digest()
    signature = sign(digest)
    return body + digest + signature.key_id + signature.signature


def build_checked(credentials: CredentialSet, signature: BundleSignature | None = None) -> bytes:
    """Build with the plain construct definition: the reference `encode()` must agree with."""
    device_id = _check_limits(credentials)
    flags = FLAG_SIGNED if signature is not None else 0
    return Bundle.build(
        {
            "body": {
                "value": {
                    "header": {
                        "version": FORMAT_VERSION,
                        "flags": flags,
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
                                    "payload": s.data,
                                }
                            }
                        }
                        for s in credentials
                    ],
                }
            },
            "signature": None
            if signature is None
            else {"key_id": signature.key_id, "signature": signature.signature},
        }
    )


# --- parsing -------------------------------------------------------------------------


def _credentials(device_id: bytes, records: Any) -> CredentialSet:
    slots = [
        Slot(
            r["sec_tag"],
            _SLOT_BY_VALUE[r["slot"]],
            _ENCODING_BY_VALUE[r["encoding"]],
            r["payload"],
            _FLAGS_BY_VALUE[r["flags"]],
        )
        for r in records
    ]
    try:
        credentials = CredentialSet(tuple(slots), device_id.decode("ascii") or None)
    except InputError as err:  # e.g. a duplicate slot
        raise BundleError(err.message, code="bundle.duplicate") from None
    # Canonical order is part of the format: a reordered bundle is not one we wrote.
    if credentials.slots != tuple(slots):
        raise BundleError(
            "records are not in canonical order (sec_tag, slot type, payload)",
            code="bundle.order",
        )
    return credentials


def _trailer_start(data: bytes) -> int | None:
    """Where the SHA-256 starts if the header's signed flag is honest, else None."""
    if len(data) < MIN_BUNDLE or data[:4] != MAGIC or data[4] != FORMAT_VERSION:
        return None
    extra = KEY_ID_SIZE + SIGNATURE_SIZE if data[5] & FLAG_SIGNED else 0
    start = len(data) - DIGEST_SIZE - extra
    return start if start >= HEADER_FIXED else None


def _decode_fast(data: bytes) -> DecodedBundle | None:
    """The fenced compiled parse; None means "ask the checked parser why"."""
    end = _trailer_start(data)
    if end is None:
        return None
    body = data[:end]
    digest = data[end : end + DIGEST_SIZE]
    if hashlib.sha256(body).digest() != digest:
        return None
    try:
        parsed = _BodyFast.parse(body)
    except Exception:  # the compiled parser may raise anything on bad input
        return None
    if _header_fault(parsed) is not None:
        return None
    device_id = parsed["device_id"]
    view = memoryview(body)
    offset = HEADER_FIXED + len(device_id)
    for r in parsed["records"]:
        size = RECORD_OVERHEAD - 4 + len(r["payload"])
        if (
            len(r["payload"]) != r["length"]
            or _record_fault(r) is not None
            or zlib.crc32(view[offset : offset + size]) != r["crc32"]
        ):
            return None
        offset += size + 4
    if offset != end:
        return None
    credentials = _credentials(device_id, parsed["records"])
    signature = None
    if parsed["flags"] & FLAG_SIGNED:
        sig = data[end + DIGEST_SIZE :]
        signature = BundleSignature(sig[:KEY_ID_SIZE], sig[KEY_ID_SIZE:])
    # The trezor sanity check: what we decoded must encode to exactly what we read.
    if _body_bytes(credentials, signature is not None, device_id) != body:
        return None
    return DecodedBundle(credentials, digest, signature, len(data))


def decode(data: bytes) -> DecodedBundle:
    """Parse and validate bundle bytes from any source; raise BundleError with a one-line reason.

    Accepts exactly the bundles `decode_checked()` accepts, with the same result.
    """
    data = bytes(data)
    decoded = _decode_fast(data)
    if decoded is not None:
        return decoded
    decoded = decode_checked(data)
    # The checked parser accepted what the fast path refused: they disagree. Refuse too.
    raise BundleError(
        "bundle is not in canonical form (re-encoding it gives different bytes)",
        code="bundle.noncanonical",
    )  # pragma: no cover - would be a bug; tests compare both paths


def decode_checked(data: bytes) -> DecodedBundle:
    """Parse with the plain construct definition only. Slow; names the failing field."""
    data = bytes(data)
    _diagnose(data)
    try:
        parsed = Bundle.parse(data)
    except ConstructError as err:  # pragma: no cover - _diagnose found these already
        raise BundleError(f"malformed bundle: {_first_line(err)}") from None
    value = parsed.body.value
    credentials = _credentials(value.header.device_id, [r.body.value for r in value.records])
    signature = None
    if parsed.signature is not None:
        signature = BundleSignature(
            bytes(parsed.signature.key_id), bytes(parsed.signature.signature)
        )
    body = parsed.body.data
    if build_checked(credentials, signature)[: len(body)] != body:
        raise BundleError(
            "bundle is not in canonical form (re-encoding it gives different bytes)",
            code="bundle.noncanonical",
        )
    return DecodedBundle(credentials, bytes(parsed.sha256), signature, len(data))


def _first_line(err: ConstructError) -> str:
    if isinstance(err, RuleError):
        return err.reason
    lines = str(err).strip().splitlines()
    return lines[-1] if lines else type(err).__name__


def _diagnose(data: bytes) -> None:
    """Walk the bundle piece by piece with the checked constructs; raise at the first fault.

    Same definition as `Bundle`, parsed in steps so the message can say which record
    and which byte offset is at fault.
    """
    stream = io.BytesIO(data)
    size = len(data)
    if size < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BundleError("not a provision bundle (bad magic)", code="bundle.magic")
    try:
        header = Header.parse_stream(stream)
    except RuleError as err:
        raise BundleError(f"header: {err.reason}", code=err.code) from None
    except StreamError:
        raise BundleError(
            f"truncated bundle: {size} bytes end inside the header", code="bundle.truncated"
        ) from None
    except ConstError:  # pragma: no cover - magic checked above
        raise BundleError("not a provision bundle (bad magic)", code="bundle.magic") from None
    for index in range(header.record_count):
        start = stream.tell()
        where = f"record {index} at offset {start}"
        try:
            Record.parse_stream(stream)
        except RuleError as err:
            raise BundleError(f"{where}: {err.reason}", code=err.code) from None
        except ChecksumError:
            raise BundleError(
                f"{where}: CRC32 mismatch (record damaged)", code="bundle.crc"
            ) from None
        except StreamError:
            raise BundleError(
                f"truncated bundle: {size} bytes end inside {where} "
                f"(header says {header.record_count} records)",
                code="bundle.truncated",
            ) from None
    end = stream.tell()
    if size < end + DIGEST_SIZE:
        raise BundleError(
            f"truncated bundle: {size} bytes end inside the SHA-256 at offset {end}",
            code="bundle.truncated",
        )
    if hashlib.sha256(data[:end]).digest() != data[end : end + DIGEST_SIZE]:
        raise BundleError(
            f"SHA-256 mismatch at offset {end}: the bundle was altered or corrupted",
            code="bundle.digest",
        )
    expected = end + DIGEST_SIZE
    if header.flags & FLAG_SIGNED:
        expected += KEY_ID_SIZE + SIGNATURE_SIZE
        if size < expected:
            raise BundleError(
                f"truncated bundle: {size} bytes end inside the signature at offset "
                f"{end + DIGEST_SIZE} (header says signed)",
                code="bundle.truncated",
            )
    if size > expected:
        raise BundleError(
            f"{size - expected} trailing bytes after the end of the bundle at offset {expected}",
            code="bundle.trailing",
        )


__all__ = [
    "ALLOWED_ENCODINGS",
    "FLAG_SIGNED",
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_DEVICE_ID",
    "MAX_PAYLOAD",
    "MAX_RECORDS",
    "Bundle",
    "BundleBody",
    "BundleSignature",
    "DecodedBundle",
    "Header",
    "Record",
    "RecordBody",
    "RecordSpan",
    "build_checked",
    "decode",
    "decode_checked",
    "encode",
    "encode_signed",
    "record_spans",
    "signing_digest",
]
