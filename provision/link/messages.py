"""Every message of the native link protocol, defined once with construct. Sans-IO.

    body   = header | payload           (framing.py adds CRC32, COBS and the 0x00 delimiter)
    header = version u8 (=1) | type u8 | seq u16 | length u16     (length of payload)

All integers little-endian, fixed width; variable fields are u8-length-prefixed or run to the
end of the payload. docs/protocol.md describes each byte; tests/vectors/frames.jsonl locks
them. A change here is a protocol version bump and new vectors, never a silent edit.

`encode(msg, seq)` builds a body; `decode(body)` parses one and raises only
RemoteProtocolError, whatever the bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, ClassVar

from construct import (
    Array,
    Bytes,
    Const,
    ConstructError,
    GreedyBytes,
    If,
    Int8ul,
    Int16ul,
    Int32ul,
    PascalString,
    Prefixed,
    PrefixedArray,
    Struct,
    Terminated,
    this,
)

from provision.link.errors import LocalProtocolError, RemoteProtocolError

PROTOCOL_VERSION = 1
HEADER_SIZE = 6
DIGEST_SIZE = 32
# Every device accepts frames with at least this much payload, so HELLO always fits.
MIN_PAYLOAD = 128
MAX_PAYLOAD = 4096
MAX_WINDOW = 32  # the ACK's selective bitmap has 32 bits
DATA_OVERHEAD = 6  # transfer_id u16 + offset u32 before the chunk
LIST_ENTRY_SIZE = 41
DELETE_ALL_GUARD = 0x214C4C41  # b"ALL!" read as u32 little-endian
MAX_TEXT = 64
# Lean transfers (Feature.LEAN): a device streams DATA_LEAN chunks into its staging area as
# they arrive, so a chunk may be longer than its max_payload, up to this.
LEAN_MAX_CHUNK = 4096
LEAN_DATA_HEADER = 5  # type u8 + transfer_id u16 + index u16: the whole DATA_LEAN header
LEAN_DIGEST_SIZE = 4  # BEGIN_LEAN names the bundle by this much of its SHA-256


class MsgType(IntEnum):
    HELLO = 0x01
    BEGIN = 0x02
    DATA = 0x03
    COMMIT = 0x04
    LIST = 0x05
    READ = 0x06
    DELETE = 0x07
    KEYGEN = 0x08
    RESET = 0x09
    TLS_CHECK = 0x0A
    CHANGE_BAUD = 0x0B
    BEGIN_LEAN = 0x0C
    DATA_LEAN = 0x0D
    OK = 0x80
    HELLO_INFO = 0x81
    ACK = 0x82
    NAK = 0x83
    COMMITTED = 0x84
    LIST_PAGE = 0x85
    READ_DATA = 0x86
    CSR = 0x87
    TLS_RESULT = 0x88
    ERROR = 0x8F


class Feature(IntFlag):
    NONE = 0
    KEYGEN = 0x0001  # KEYGEN is implemented
    SIGNED_ONLY = 0x0002  # the device holds a provisioning key and applies signed bundles only
    RESUME = 0x0004  # a repeated BEGIN resumes a transfer
    READ = 0x0008  # READ of certificates is implemented
    TLS_CHECK = 0x0010  # the device can run a mutual-TLS handshake with its slots (simulator)
    BAUD = 0x0020  # HELLO_INFO ends with the line rates CHANGE_BAUD can switch to
    LEAN = 0x0040  # BEGIN_LEAN and DATA_LEAN: lean transfer frames, chunks up to LEAN_MAX_CHUNK


class ErrorCode(IntEnum):
    UNSUPPORTED_VERSION = 0x01
    UNKNOWN_MESSAGE = 0x02
    MALFORMED = 0x03
    NO_TRANSFER = 0x04
    INCOMPLETE = 0x05
    DIGEST_MISMATCH = 0x06
    BAD_BUNDLE = 0x07
    BAD_SIGNATURE = 0x08
    TOO_LARGE = 0x09
    NO_SPACE = 0x0A
    NOT_FOUND = 0x0B
    FORBIDDEN = 0x0C
    GUARD = 0x0D
    UNSUPPORTED = 0x0E
    FLASH = 0x0F
    BUSY = 0x10


class NakReason(IntEnum):
    BAD_FRAME = 1  # CRC/COBS error or frame too long: something was lost
    OUT_OF_WINDOW = 2  # DATA beyond cumulative + window * chunk_size
    BAD_OFFSET = 3  # DATA offset not a multiple of chunk_size, or wrong chunk length


class DeleteScope(IntEnum):
    SLOT = 0
    TAG = 1
    ALL = 2


Header = Struct(
    "version" / Int8ul,
    "type" / Int8ul,
    "seq" / Int16ul,
    "length" / Int16ul,
)

# DATA_LEAN's frame body has no standard header: its first byte is the type, which no
# version-1 header starts with, so a device without Feature.LEAN refuses it
# (UNSUPPORTED_VERSION) and nothing else can mistake it.
LeanDataBody = Struct(
    "type" / Const(bytes([MsgType.DATA_LEAN])),
    "transfer_id" / Int16ul,
    "index" / Int16ul,
    "chunk" / GreedyBytes,
)

ListEntry = Struct(
    "sec_tag" / Int32ul,
    "slot" / Int8ul,
    "size" / Int32ul,
    "sha256" / Bytes(DIGEST_SIZE),
)

_Text = PascalString(Int8ul, "utf8")
_Blob = Prefixed(Int8ul, GreedyBytes)


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[MsgType]
    STRUCT: ClassVar[Any]

    def fields(self) -> dict[str, Any]:
        """JSON-safe field values (bytes as hex), as in tests/vectors/frames.jsonl."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return int(value) if isinstance(value, IntEnum | IntFlag) else value


@dataclass(frozen=True)
class Hello(Message):
    """host → device: open a session; `max_payload` is what the host can receive."""

    TYPE = MsgType.HELLO
    STRUCT = Struct("version" / Int8ul, "max_payload" / Int16ul, Terminated)
    version: int
    max_payload: int


@dataclass(frozen=True)
class HelloInfo(Message):
    """device → host: answer to HELLO with the device's identity and limits."""

    TYPE = MsgType.HELLO_INFO
    STRUCT = Struct(
        "version" / Int8ul,
        "max_payload" / Int16ul,
        "window" / Int8ul,
        "max_bundle" / Int32ul,
        "max_slots" / Int16ul,
        "max_tags" / Int16ul,
        "max_slot_size" / Int32ul,
        "features" / Int16ul,
        "uid" / _Blob,
        "firmware" / _Text,
        # Only with Feature.BAUD, so a HELLO_INFO without it is byte for byte as before.
        "rates" / If(this.features & Feature.BAUD, PrefixedArray(Int8ul, Int32ul)),
        Terminated,
    )
    version: int
    max_payload: int
    window: int
    max_bundle: int
    max_slots: int
    max_tags: int
    max_slot_size: int
    features: int
    uid: bytes
    firmware: str
    rates: tuple[int, ...] = ()  # baud rates the device can switch to (Feature.BAUD)


@dataclass(frozen=True)
class Begin(Message):
    TYPE = MsgType.BEGIN
    STRUCT = Struct(
        "transfer_id" / Int16ul,
        "total_size" / Int32ul,
        "chunk_size" / Int16ul,
        "sha256" / Bytes(DIGEST_SIZE),
        Terminated,
    )
    transfer_id: int
    total_size: int
    chunk_size: int
    sha256: bytes


@dataclass(frozen=True)
class Data(Message):
    TYPE = MsgType.DATA
    STRUCT = Struct("transfer_id" / Int16ul, "offset" / Int32ul, "chunk" / GreedyBytes)
    transfer_id: int
    offset: int
    chunk: bytes


@dataclass(frozen=True)
class BeginLean(Message):
    """A transfer whose chunks come as DATA_LEAN (Feature.LEAN): `chunk_size` up to
    LEAN_MAX_CHUNK whatever the device's max_payload; `digest` is the first 4 bytes of the
    bundle's SHA-256 (a resume's identity; the bundle's own SHA-256 is its integrity)."""

    TYPE = MsgType.BEGIN_LEAN
    STRUCT = Struct(
        "transfer_id" / Int16ul,
        "total_size" / Int32ul,
        "chunk_size" / Int16ul,
        "digest" / Bytes(LEAN_DIGEST_SIZE),
        Terminated,
    )
    transfer_id: int
    total_size: int
    chunk_size: int
    digest: bytes


@dataclass(frozen=True)
class DataLean(Message):
    """One chunk of a lean transfer, in a frame of its own shape (LeanDataBody): no version,
    seq or length, the chunk named by its index. Answered like DATA, with seq 0."""

    TYPE = MsgType.DATA_LEAN
    STRUCT = LeanDataBody  # the whole frame body, type byte included
    transfer_id: int
    index: int
    chunk: bytes


@dataclass(frozen=True)
class Commit(Message):
    TYPE = MsgType.COMMIT
    STRUCT = Struct("transfer_id" / Int16ul, Terminated)
    transfer_id: int


@dataclass(frozen=True)
class ListSlots(Message):
    TYPE = MsgType.LIST
    STRUCT = Struct("start" / Int16ul, Terminated)
    start: int


@dataclass(frozen=True)
class Read(Message):
    TYPE = MsgType.READ
    STRUCT = Struct(
        "sec_tag" / Int32ul,
        "slot" / Int8ul,
        "offset" / Int32ul,
        "max_len" / Int16ul,
        Terminated,
    )
    sec_tag: int
    slot: int
    offset: int
    max_len: int


@dataclass(frozen=True)
class Delete(Message):
    TYPE = MsgType.DELETE
    STRUCT = Struct(
        "scope" / Int8ul,
        "sec_tag" / Int32ul,
        "slot" / Int8ul,
        "guard" / Int32ul,
        Terminated,
    )
    scope: int
    sec_tag: int
    slot: int
    guard: int


@dataclass(frozen=True)
class Keygen(Message):
    """offset 0 generates a new key and CSR; offset > 0 reads on in the CSR made last."""

    TYPE = MsgType.KEYGEN
    STRUCT = Struct("sec_tag" / Int32ul, "offset" / Int16ul, "subject" / _Text, Terminated)
    sec_tag: int
    offset: int
    subject: str


@dataclass(frozen=True)
class Reset(Message):
    TYPE = MsgType.RESET
    STRUCT = Struct(Terminated)


@dataclass(frozen=True)
class Ok(Message):
    TYPE = MsgType.OK
    STRUCT = Struct("request" / Int8ul, Terminated)
    request: int


@dataclass(frozen=True)
class Ack(Message):
    """All bytes below `cumulative` are held; bit i of `sack` means the chunk at
    cumulative + (i + 1) * chunk_size is held too."""

    TYPE = MsgType.ACK
    STRUCT = Struct("transfer_id" / Int16ul, "cumulative" / Int32ul, "sack" / Int32ul, Terminated)
    transfer_id: int
    cumulative: int
    sack: int


@dataclass(frozen=True)
class Nak(Message):
    TYPE = MsgType.NAK
    STRUCT = Struct("transfer_id" / Int16ul, "offset" / Int32ul, "reason" / Int8ul, Terminated)
    transfer_id: int
    offset: int
    reason: int


@dataclass(frozen=True)
class Committed(Message):
    """The set is applied. `set_digest` = SHA-256 over, for each bundle slot in canonical
    order, sec_tag u32 | slot u8 | SHA-256 of the bytes read back from flash."""

    TYPE = MsgType.COMMITTED
    STRUCT = Struct(
        "transfer_id" / Int16ul,
        "slot_count" / Int16ul,
        "set_digest" / Bytes(DIGEST_SIZE),
        Terminated,
    )
    transfer_id: int
    slot_count: int
    set_digest: bytes


@dataclass(frozen=True)
class Entry:
    sec_tag: int
    slot: int
    size: int
    sha256: bytes


@dataclass(frozen=True)
class ListPage(Message):
    TYPE = MsgType.LIST_PAGE
    STRUCT = Struct(
        "total" / Int16ul,
        "start" / Int16ul,
        "count" / Int8ul,
        "entries" / Array(this.count, ListEntry),
        Terminated,
    )
    total: int
    start: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class ReadData(Message):
    TYPE = MsgType.READ_DATA
    STRUCT = Struct(
        "sec_tag" / Int32ul,
        "slot" / Int8ul,
        "total" / Int32ul,
        "offset" / Int32ul,
        "data" / GreedyBytes,
    )
    sec_tag: int
    slot: int
    total: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class Csr(Message):
    TYPE = MsgType.CSR
    STRUCT = Struct(
        "sec_tag" / Int32ul,
        "total" / Int16ul,
        "offset" / Int16ul,
        "data" / GreedyBytes,
    )
    sec_tag: int
    total: int
    offset: int
    data: bytes


@dataclass(frozen=True)
class TlsCheck(Message):
    """host → device: do a mutual-TLS handshake to host:port with only the slots of sec_tag.
    `tls` 0 = TLS 1.2 or 1.3, 12, 13. `timeout_ms` bounds the device's handshake."""

    TYPE = MsgType.TLS_CHECK
    STRUCT = Struct(
        "sec_tag" / Int32ul,
        "port" / Int16ul,
        "tls" / Int8ul,
        "timeout_ms" / Int16ul,
        "host" / _Text,
        Terminated,
    )
    sec_tag: int
    port: int
    tls: int
    timeout_ms: int
    host: str


@dataclass(frozen=True)
class TlsResult(Message):
    """device → host: what the handshake showed (provision.tls.report.HandshakeReport).
    `failure` is a provision.tls.report.Failure number (0 = none); `client_accepted` 0 no,
    1 yes, 2 unknown (the server stayed silent)."""

    TYPE = MsgType.TLS_RESULT
    STRUCT = Struct(
        "sec_tag" / Int32ul,
        "failure" / Int8ul,
        "server_verified" / Int8ul,
        "client_accepted" / Int8ul,
        "version" / _Text,
        "cipher" / _Text,
        "accepted_as" / _Text,
        "evidence" / _Text,
        "detail" / _Text,
        "chain" / PrefixedArray(Int8ul, _Text),
        Terminated,
    )
    sec_tag: int
    failure: int
    server_verified: int
    client_accepted: int
    version: str
    cipher: str
    accepted_as: str
    evidence: str
    detail: str
    chain: tuple[str, ...]


@dataclass(frozen=True)
class ChangeBaud(Message):
    """host → device: switch the line to `baud` (one of HELLO_INFO's rates). The device
    answers OK at the old rate, then switches; the host confirms with HELLO at the new rate
    (docs/protocol.md, CHANGE_BAUD)."""

    TYPE = MsgType.CHANGE_BAUD
    STRUCT = Struct("baud" / Int32ul, Terminated)
    baud: int


@dataclass(frozen=True)
class Error(Message):
    TYPE = MsgType.ERROR
    STRUCT = Struct("code" / Int8ul, "request" / Int8ul, "detail" / _Text, Terminated)
    code: int
    request: int
    detail: str


MESSAGES: dict[MsgType, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        HelloInfo,
        Begin,
        Data,
        Commit,
        ListSlots,
        Read,
        Delete,
        Keygen,
        Reset,
        Ok,
        Ack,
        Nak,
        Committed,
        ListPage,
        ReadData,
        Csr,
        TlsCheck,
        TlsResult,
        ChangeBaud,
        BeginLean,
        DataLean,
        Error,
    )
}
BY_NAME: dict[str, type[Message]] = {cls.TYPE.name: cls for cls in MESSAGES.values()}
REQUESTS = frozenset(t for t in MsgType if t < 0x80)


def _payload_dict(msg: Message) -> dict[str, Any]:
    values = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
    if isinstance(msg, ListPage):
        values["count"] = len(msg.entries)
        values["entries"] = [dataclasses.asdict(e) for e in msg.entries]
    return values


def payload_of(msg: Message) -> bytes:
    try:
        return msg.STRUCT.build(_payload_dict(msg))
    except (ConstructError, ValueError, TypeError, UnicodeError) as err:
        raise LocalProtocolError(f"cannot build {msg.TYPE.name}: {err}") from None


def encode(msg: Message, seq: int) -> bytes:
    """Header + payload (the frame body). Raises LocalProtocolError on bad field values.
    DATA_LEAN has a body of its own (LeanDataBody) and no seq."""
    if isinstance(msg, DataLean):
        if len(msg.chunk) > LEAN_MAX_CHUNK:
            raise LocalProtocolError(f"DATA_LEAN chunk of {len(msg.chunk)} bytes is too long")
        try:
            return bytes(LeanDataBody.build(_payload_dict(msg)))
        except (ConstructError, ValueError, TypeError) as err:
            raise LocalProtocolError(f"cannot build DATA_LEAN: {err}") from None
    payload = payload_of(msg)
    if len(payload) > MAX_PAYLOAD:
        raise LocalProtocolError(f"{msg.TYPE.name} payload of {len(payload)} bytes is too long")
    if not 0 <= seq <= 0xFFFF:
        raise LocalProtocolError(f"seq {seq} out of range")
    return (
        Header.build(
            {"version": PROTOCOL_VERSION, "type": msg.TYPE, "seq": seq, "length": len(payload)}
        )
        + payload
    )


@dataclass(frozen=True)
class Frame:
    seq: int
    message: Message


def decode_header(body: bytes) -> tuple[int, int, int]:
    """(version, type, seq) of a body, for answering frames whose payload is bad."""
    if len(body) < HEADER_SIZE:
        raise RemoteProtocolError(f"frame body of {len(body)} bytes is shorter than a header")
    h = Header.parse(body[:HEADER_SIZE])
    return h.version, h.type, h.seq


def is_lean_data(body: bytes) -> bool:
    return body[:1] == bytes([MsgType.DATA_LEAN])


def decode(body: bytes) -> Frame:
    """Frame body → Frame. Raises RemoteProtocolError (only) on anything invalid."""
    if is_lean_data(body):
        if len(body) < LEAN_DATA_HEADER + 1 or len(body) > LEAN_DATA_HEADER + LEAN_MAX_CHUNK:
            raise RemoteProtocolError(f"DATA_LEAN frame body of {len(body)} bytes")
        lean = LeanDataBody.parse(body)
        return Frame(0, DataLean(lean.transfer_id, lean.index, bytes(lean.chunk)))
    version, type_, seq = decode_header(body)
    if version != PROTOCOL_VERSION:
        raise RemoteProtocolError(f"unsupported protocol version {version}")
    length = int.from_bytes(body[4:6], "little")
    payload = body[HEADER_SIZE:]
    if length != len(payload):
        raise RemoteProtocolError(f"header says {length} payload bytes, frame has {len(payload)}")
    try:
        cls = MESSAGES[MsgType(type_)]
    except ValueError:
        raise RemoteProtocolError(f"unknown message type 0x{type_:02x}") from None
    if cls is DataLean:
        raise RemoteProtocolError("DATA_LEAN comes in a frame of its own, not behind a header")
    try:
        parsed = cls.STRUCT.parse(payload)
    except (ConstructError, UnicodeError) as err:
        text = str(err).split("\n")[0]
        raise RemoteProtocolError(f"malformed {cls.TYPE.name} payload: {text}") from None
    values = {f.name: parsed[f.name] for f in dataclasses.fields(cls)}
    if cls is ListPage:
        values["entries"] = tuple(
            Entry(e.sec_tag, e.slot, e.size, bytes(e.sha256)) for e in parsed.entries
        )
    if cls is TlsResult:
        values["chain"] = tuple(values["chain"])
    if cls is HelloInfo:
        values["rates"] = tuple(values["rates"] or ())
    for key, value in values.items():
        if isinstance(value, bytes | bytearray):
            values[key] = bytes(value)
    return Frame(seq, cls(**values))


def set_digest(items: list[tuple[int, int, bytes]]) -> bytes:
    """COMMITTED.set_digest: SHA-256 over sec_tag u32 | slot u8 | SHA-256(stored bytes) for
    each slot in the bundle's canonical order (docs/protocol.md §3)."""
    h = hashlib.sha256()
    for sec_tag, slot, data in items:
        h.update(Int32ul.build(sec_tag) + Int8ul.build(slot) + hashlib.sha256(data).digest())
    return h.digest()


def from_fields(name: str, fields: dict[str, Any]) -> Message:
    """Inverse of Message.fields(): used by the golden vector tests and the generator."""
    cls = BY_NAME[name]
    values = dict(fields)
    for f in dataclasses.fields(cls):
        if f.type in ("bytes",) and isinstance(values.get(f.name), str):
            values[f.name] = bytes.fromhex(values[f.name])
    if cls is ListPage:
        values["entries"] = tuple(
            Entry(e["sec_tag"], e["slot"], e["size"], bytes.fromhex(e["sha256"]))
            for e in values["entries"]
        )
    if cls is TlsResult:
        values["chain"] = tuple(values["chain"])
    if cls is HelloInfo:
        values["rates"] = tuple(values.get("rates", ()))
    return cls(**values)
