"""Turn the golden vectors and Python-made cases into "kind name fields..." lines for C.

The C test program reads only this text file, so it needs no JSON parser. Expectations come
from the Python implementation (zlib, hashlib, the cobs package, provision.bundle.format), which
is what makes the C code byte-compatible with the host.

    python gen_vectors.py OUT
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import zlib
from pathlib import Path

from cobs import cobs

from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.errors import ProvisionError

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"


def bundle_line(name: str, data: bytes) -> str:
    try:
        decoded = bundle_format.decode(data)
    except ProvisionError as err:
        return f"bundle {name} {data.hex() or '-'} err {err.code or 'bundle.unknown'}"
    fields = [
        f"{s.sec_tag},{int(s.type)},{int(s.encoding)},{int(s.flags)},{len(s.data)},"
        f"{hashlib.sha256(s.data).hexdigest()}"
        for s in decoded.credentials
    ]
    return f"bundle {name} {data.hex()} ok {len(fields)} {' '.join(fields)}".rstrip()


def made_bundles(rng: random.Random) -> list[tuple[str, bytes]]:
    cert = bytes(rng.randrange(256) for _ in range(700))
    key = bytes(rng.randrange(256) for _ in range(138))
    base = CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.DER, cert[:300]),
            Slot(42, SlotType.ROOT_CA, Encoding.DER, cert[300:]),
            Slot(42, SlotType.CLIENT_CERT, Encoding.DER, cert),
            Slot(42, SlotType.CLIENT_KEY, Encoding.DER, key),
            Slot(7, SlotType.PSK, Encoding.RAW, b"\x00" * 32),
            Slot(7, SlotType.PSK_IDENTITY, Encoding.RAW, b"id-1"),
        ],
        device_id="dev-0001",
    )
    good = bundle_format.encode(base)
    signed = bundle_format.encode(base, bundle_format.BundleSignature(b"K" * 8, bytes(range(64))))
    out = [
        ("made_set", good),
        ("made_signed", signed),
        ("made_empty", bundle_format.encode(CredentialSet.of([]))),
        (
            "made_big",
            bundle_format.encode(
                CredentialSet.of([Slot(1, SlotType.CLIENT_CERT, Encoding.PEM, bytes(16 * 1024))])
            ),
        ),
        # Two sets for the power-cut test: the second replaces part of the first.
        ("store_old", good),
        (
            "store_new",
            bundle_format.encode(
                CredentialSet.of(
                    [
                        Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, b"-----NEW CERT-----" * 20),
                        Slot(99, SlotType.ROOT_CA, Encoding.DER, cert[::-1]),
                    ],
                    device_id="dev-0001",
                )
            ),
        ),
        # Tag 42 again with a root_ca only: the protocol keeps the stored client_key.
        (
            "store_keep",
            bundle_format.encode(
                CredentialSet.of(
                    [
                        Slot(42, SlotType.ROOT_CA, Encoding.DER, cert[100:400]),
                    ]
                )
            ),
        ),
        ("bad_truncated", good[:-1]),
        ("bad_trailing", good + b"\x00"),
        ("bad_magic", b"PRVX" + good[4:]),
        ("bad_version", good[:4] + b"\x02" + good[5:]),
        ("bad_short", b"PRV"),
        ("bad_signed_no_sig", good[:5] + b"\x01" + good[6:]),
    ]
    # Corrupt one byte everywhere in a small bundle: the C parser must reject each one the
    # Python parser rejects, with the same verdict.
    small = bundle_format.encode(
        CredentialSet.of(
            [
                Slot(3, SlotType.ROOT_CA, Encoding.DER, b"abc"),
                Slot(3, SlotType.PSK, Encoding.RAW, b"k"),
            ]
        )
    )
    for i in range(len(small)):
        mutated = bytearray(small)
        mutated[i] ^= 0xFF
        out.append((f"flip_{i}", bytes(mutated)))

    # Re-sealed bundles (CRC and SHA recomputed) that only the meaning checks catch.
    def reseal(body: bytes) -> bytes:
        return body + hashlib.sha256(body).digest()

    def record(tag: int, slot: int, enc: int, payload: bytes, flags: int = 0) -> bytes:
        head = tag.to_bytes(4, "little") + bytes([slot, enc]) + flags.to_bytes(2, "little")
        head += len(payload).to_bytes(4, "little") + payload
        return head + zlib.crc32(head).to_bytes(4, "little")

    def header(count: int, flags: int = 0, device_id: bytes = b"") -> bytes:
        return (
            b"PRVB\x01" + bytes([flags, len(device_id)]) + device_id + count.to_bytes(2, "little")
        )

    out += [
        ("meaning_unknown_slot", reseal(header(1) + record(1, 9, 0, b"x"))),
        ("meaning_unknown_encoding", reseal(header(1) + record(1, 0, 7, b"x"))),
        ("meaning_raw_cert", reseal(header(1) + record(1, 1, 2, b"x"))),
        ("meaning_der_psk", reseal(header(1) + record(1, 4, 0, b"x"))),
        ("meaning_empty_payload", reseal(header(1) + record(1, 1, 0, b""))),
        ("meaning_encrypted_key", reseal(header(1) + record(1, 2, 0, b"k", flags=1))),
        ("meaning_encrypted_cert", reseal(header(1) + record(1, 1, 0, b"c", flags=1))),
        (
            "meaning_dup_late",
            reseal(
                header(3) + record(5, 1, 0, b"a") + record(6, 1, 0, b"a") + record(5, 1, 0, b"b")
            ),
        ),
        ("meaning_space_id", reseal(header(0, device_id=b"a b"))),
        ("meaning_id_65", reseal(header(0, device_id=b"a" * 65))),
        ("meaning_trunc_header_bad_id", b"PRVB\x01\x00\x02\x01\x01"),
        ("meaning_flags", reseal(header(0, flags=0x80))),
        ("meaning_order_tag", reseal(header(2) + record(5, 1, 0, b"a") + record(4, 1, 0, b"a"))),
        ("meaning_order_slot", reseal(header(2) + record(5, 2, 0, b"a") + record(5, 1, 0, b"a"))),
        ("meaning_dup", reseal(header(2) + record(5, 1, 0, b"a") + record(5, 1, 0, b"b"))),
        ("meaning_root_order", reseal(header(2) + record(5, 0, 0, b"b") + record(5, 0, 0, b"a"))),
        ("meaning_root_prefix", reseal(header(2) + record(5, 0, 0, b"ab") + record(5, 0, 0, b"a"))),
        ("meaning_root_ok", reseal(header(2) + record(5, 0, 0, b"a") + record(5, 0, 0, b"ab"))),
        ("meaning_root_same", reseal(header(2) + record(5, 0, 0, b"a") + record(5, 0, 0, b"a"))),
        ("meaning_sec_tag", reseal(header(1) + record(2**31, 1, 0, b"a"))),
        ("meaning_length", reseal(header(1) + record(1, 1, 0, bytes(16 * 1024 + 1)))),
        ("meaning_count", reseal(header(65))),
        ("meaning_non_ascii", reseal(header(0, device_id=b"\xff\xfe"))),
        ("meaning_ctrl_id", reseal(header(0, device_id=b"a\x01"))),
        ("meaning_flag_bits", reseal(header(1) + record(1, 2, 0, b"a", flags=0x8001))),
    ]
    return out


def flat(value: object) -> str:
    """A field value as one token: ints in decimal, byte fields as the JSON's hex ("-" if
    empty), LIST_PAGE entries as sec_tag:slot:size:sha256 joined by commas, lists of ints
    (HELLO_INFO rates) in decimal joined by commas."""
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, list):
        items = [
            f"{e['sec_tag']}:{e['slot']}:{e['size']}:{e['sha256']}"
            if isinstance(e, dict)
            else str(e)
            if isinstance(e, int)
            else str(e).encode().hex()
            for e in value
        ]
        return ",".join(items) or "-"
    return str(value) or "-"


TEXT_FIELDS = {
    "firmware",
    "detail",
    "subject",
    "host",
    "version",
    "cipher",
    "accepted_as",
    "evidence",
}


def text_hex(key: str, value: object) -> object:
    """Texts that may hold spaces go as hex (HELLO's `version` is a number, TLS_RESULT's a
    text)."""
    return value.encode().hex() if key in TEXT_FIELDS and isinstance(value, str) else value


def main() -> None:
    rng = random.Random(4)
    lines: list[str] = []
    for n in (0, 1, 3, 55, 56, 64, 200, 1000):
        data = bytes(rng.randrange(256) for _ in range(n))
        lines.append(f"crc32 r{n} {data.hex() or '-'} {zlib.crc32(data):08x}")
        lines.append(f"sha256 r{n} {data.hex() or '-'} {hashlib.sha256(data).hexdigest()}")
    cobs_cases = [
        b"",
        b"\x00",
        b"\x00\x00",
        b"a" * 253,
        b"a" * 254,
        b"a" * 255,
        b"a" * 254 + b"\x00",
        b"\x00" + b"a" * 254,
        b"a" * 508,
        bytes(range(256)) * 3,
    ]
    cobs_cases += [
        bytes(rng.choice([0, 0, 1, 2, 255]) for _ in range(rng.randrange(600))) for _ in range(40)
    ]
    for i, data in enumerate(cobs_cases):
        lines.append(f"cobs c{i} {data.hex() or '-'} {cobs.encode(data).hex()}")
    for name, data in made_bundles(rng):
        lines.append(bundle_line(name, data))
    # Golden bundles: the expectation is what the JSON file says, not what Python decodes now.
    for path in sorted((VECTORS / "bundles").glob("*.json")):
        vec = json.loads(path.read_text())
        fields = [
            f"{r['sec_tag']},{r['slot']},{r['encoding']},{r['flags']},{r['length']},"
            f"{hashlib.sha256(bytes.fromhex(r['payload'])).hexdigest()}"
            for r in vec["records"]
        ]
        lines.append(
            f"bundle golden_{vec['name']} {vec['hex']} ok {len(fields)} {' '.join(fields)}".rstrip()
        )
    frames = VECTORS / "frames.jsonl"
    if frames.is_file():
        for line in frames.read_text().splitlines():
            if line.strip():
                vec = json.loads(line)
                fields = " ".join(
                    f"{k}={flat(text_hex(k, v))}" for k, v in sorted(vec["fields"].items())
                )
                lines.append(f"frame {vec['message']} {vec['seq']} {vec['hex']} {fields}".rstrip())
    Path(sys.argv[1]).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
