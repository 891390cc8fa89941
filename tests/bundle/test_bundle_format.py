"""Bundle wire format: building, parsing, and every way a bundle can be bad."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from provision.bundle import format as fmt
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.errors import BundleError, ExitCode, InputError, PolicyError

ROOT = b"\x30\x82" + bytes(range(200))
CERT = b"\x30\x82" + bytes(range(255, 0, -1)) * 2
KEY = b"\x30\x81" + b"k" * 136


def typical(device_id: str | None = "dev-0001") -> CredentialSet:
    return CredentialSet.of(
        [
            Slot(42, SlotType.CLIENT_KEY, Encoding.DER, KEY),
            Slot(42, SlotType.ROOT_CA, Encoding.DER, ROOT),
            Slot(42, SlotType.CLIENT_CERT, Encoding.DER, CERT),
        ],
        device_id=device_id,
    )


def reseal(body: bytes) -> bytes:
    """A body with a correct SHA-256: only the meaning checks can catch what is wrong."""
    return body + hashlib.sha256(body).digest()


def record(tag: int, slot: int, enc: int, payload: bytes, flags: int = 0) -> bytes:
    head = struct.pack("<IBBHI", tag, slot, enc, flags, len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head))


def header(count: int, flags: int = 0, device_id: bytes = b"", version: int = 1) -> bytes:
    return b"PRVB" + bytes([version, flags, len(device_id)]) + device_id + struct.pack("<H", count)


def test_layout_matches_documented_bytes() -> None:
    data = fmt.encode(CredentialSet.of([Slot(7, SlotType.PSK_IDENTITY, Encoding.RAW, b"id")]))
    body = header(1) + record(7, 5, 2, b"id")
    assert data == body + hashlib.sha256(body).digest()


def test_round_trip_and_both_builders_agree() -> None:
    cs = typical()
    data = fmt.encode(cs)
    assert data == fmt.build_checked(cs)
    decoded = fmt.decode(data)
    assert decoded == fmt.decode_checked(data)
    assert decoded.credentials == cs
    assert decoded.credentials.device_id == "dev-0001"
    assert decoded.digest == hashlib.sha256(data[:-32]).digest()
    assert decoded.signature is None and decoded.size == len(data)


def test_input_order_does_not_change_bytes() -> None:
    slots = list(typical().slots)
    assert fmt.encode(CredentialSet.of(slots)) == fmt.encode(CredentialSet.of(slots[::-1]))


def test_signed_round_trip_and_digest_covers_signed_flag() -> None:
    cs = typical()
    sig = fmt.BundleSignature(b"K" * 8, bytes(range(64)))
    data = fmt.encode(cs, sig)
    assert data[5] == fmt.FLAG_SIGNED
    assert data[-72:] == b"K" * 8 + bytes(range(64))
    decoded = fmt.decode(data)
    assert decoded.signature == sig
    assert decoded.digest == fmt.signing_digest(cs)
    assert fmt.signing_digest(cs) != hashlib.sha256(fmt.encode(cs)[:-32]).digest()
    assert fmt.encode_signed(cs, lambda digest: sig) == data
    assert fmt.build_checked(cs, sig) == data


def test_empty_bundle_is_valid() -> None:
    data = fmt.encode(CredentialSet.of([]))
    assert len(data) == fmt.MIN_BUNDLE
    assert len(fmt.decode(data).credentials) == 0


def test_encrypted_flag_only_on_client_key() -> None:
    ok = Slot(1, SlotType.CLIENT_KEY, Encoding.PEM, b"k", SlotFlags.ENCRYPTED)
    assert fmt.decode(fmt.encode(CredentialSet.of([ok]))).credentials.slots[0].flags == 1
    bad = Slot(1, SlotType.ROOT_CA, Encoding.PEM, b"c", SlotFlags.ENCRYPTED)
    with pytest.raises(InputError, match="root_ca in sec_tag 1: flags"):
        fmt.encode(CredentialSet.of([bad]))


@pytest.mark.parametrize(
    ("slots", "device_id", "error", "match"),
    [
        (
            [Slot(1, SlotType.ROOT_CA, Encoding.DER, b"x" * (fmt.MAX_PAYLOAD + 1))],
            None,
            PolicyError,
            "root_ca in sec_tag 1 is 16385 bytes",
        ),
        ([Slot(1, SlotType.ROOT_CA, Encoding.DER, b"")], None, PolicyError, "is 0 bytes"),
        (
            [Slot(i, SlotType.ROOT_CA, Encoding.DER, b"x") for i in range(65)],
            None,
            PolicyError,
            "too many items: 65",
        ),
        ([], "d" * 65, PolicyError, "device id is 65 bytes"),
        ([], "", InputError, "device id is empty"),
        ([], "has space", InputError, "printable ASCII"),
        ([], "dévice", InputError, "printable ASCII"),
        ([Slot(1, SlotType.ROOT_CA, Encoding.RAW, b"x")], None, InputError, "encoding raw"),
        ([Slot(1, SlotType.PSK, Encoding.DER, b"x")], None, InputError, "encoding der"),
    ],
)
def test_encode_refuses_what_the_format_cannot_carry(slots, device_id, error, match) -> None:
    with pytest.raises(error, match=match):
        fmt.encode(CredentialSet.of(slots, device_id=device_id))


def test_limits_are_inclusive() -> None:
    cs = CredentialSet.of(
        [Slot(i, SlotType.ROOT_CA, Encoding.DER, b"x") for i in range(fmt.MAX_RECORDS - 1)]
        + [Slot(99, SlotType.CLIENT_CERT, Encoding.PEM, b"y" * fmt.MAX_PAYLOAD)],
        device_id="d" * fmt.MAX_DEVICE_ID,
    )
    assert fmt.decode(fmt.encode(cs)).credentials == cs


GOOD = fmt.encode(typical())


@pytest.mark.parametrize(
    ("data", "code", "match"),
    [
        (b"", "bundle.magic", "bad magic"),
        (b"PRV", "bundle.magic", "bad magic"),
        (b"PRVX" + GOOD[4:], "bundle.magic", "bad magic"),
        (GOOD[:4] + b"\x02" + GOOD[5:], "bundle.version", "unsupported bundle format version 2"),
        (GOOD[:5] + b"\x80" + GOOD[6:], "bundle.flags", "unknown header flags 0x80"),
        (GOOD[:-1], "bundle.truncated", "end inside the SHA-256"),
        (GOOD[:8], "bundle.truncated", "end inside the header"),
        (GOOD[:40], "bundle.truncated", "end inside record 0 at offset 17"),
        (GOOD + b"\x00", "bundle.trailing", "1 trailing bytes after the end of the bundle"),
        (GOOD + b"x" * 72, "bundle.trailing", "72 trailing bytes"),
        (GOOD[:30] + bytes([GOOD[30] ^ 1]) + GOOD[31:], "bundle.crc", "record 0 at offset 17"),
        (GOOD[:-3] + b"xyz", "bundle.digest", "SHA-256 mismatch"),
        # Signed flag set on an unsigned bundle: the digest no longer matches the header.
        (GOOD[:5] + b"\x01" + GOOD[6:], "bundle.digest", "SHA-256 mismatch"),
    ],
)
def test_bad_bundles_are_rejected_with_a_reason(data: bytes, code: str, match: str) -> None:
    with pytest.raises(BundleError, match=match) as info:
        fmt.decode(data)
    assert info.value.code == code
    assert info.value.exit_code == ExitCode.BUNDLE
    assert "\n" not in info.value.message
    with pytest.raises(BundleError, match=match):
        fmt.decode_checked(data)


def test_truncated_signature_is_named() -> None:
    data = fmt.encode(typical(), fmt.BundleSignature(b"K" * 8, b"s" * 64))
    with pytest.raises(BundleError, match="end inside the signature"):
        fmt.decode(data[:-10])


@pytest.mark.parametrize(
    ("body", "code", "match"),
    [
        (header(1) + record(1, 9, 0, b"x"), "bundle.slot", "unknown slot type 9"),
        (header(1) + record(1, 0, 7, b"x"), "bundle.encoding", "root_ca in sec_tag 1: encoding 7"),
        (header(1) + record(1, 4, 0, b"x"), "bundle.encoding", "psk in sec_tag 1: encoding 0"),
        (header(1) + record(2**31, 0, 0, b"x"), "bundle.sec_tag", "sec_tag 2147483648 out of"),
        (header(1) + record(1, 0, 0, b""), "bundle.length", "is 0 bytes"),
        (header(1) + record(1, 0, 0, b"x", flags=1), "bundle.record_flags", "flags 0x0001"),
        (header(1) + record(1, 2, 0, b"x", flags=2), "bundle.record_flags", "flags 0x0002"),
        (header(65), "bundle.count", "65 records"),
        (header(0, device_id=b"a b"), "bundle.device_id", "printable ASCII"),
        (header(0, device_id=b"\x1b[31m"), "bundle.device_id", "printable ASCII"),
        (header(0, device_id=b"d" * 65), "bundle.device_id", "65 bytes"),
        (
            header(2) + record(1, 1, 0, b"b") + record(1, 0, 0, b"a"),
            "bundle.order",
            "canonical order",
        ),
        (
            header(2) + record(1, 1, 0, b"a") + record(1, 1, 0, b"b"),
            "bundle.duplicate",
            "duplicate slot client_cert in sec_tag 1",
        ),
    ],
)
def test_resealed_bundles_fail_on_meaning(body: bytes, code: str, match: str) -> None:
    data = reseal(body)
    with pytest.raises(BundleError, match=match) as info:
        fmt.decode(data)
    assert info.value.code == code
    with pytest.raises(BundleError, match=match):
        fmt.decode_checked(data)


def test_oversized_length_field_is_refused_before_reading() -> None:
    body = header(1) + struct.pack("<IBBHI", 1, 0, 0, 0, 2**32 - 1)
    with pytest.raises(BundleError, match="4294967295 bytes") as info:
        fmt.decode(reseal(body))
    assert info.value.code == "bundle.length"


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert fmt.decode(bytearray(GOOD)).credentials == typical()
    assert fmt.decode(memoryview(GOOD)).credentials == typical()


def test_signature_value_checks_sizes() -> None:
    with pytest.raises(InputError, match="8-byte key id"):
        fmt.BundleSignature(b"short", b"s" * 64)
