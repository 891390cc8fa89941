"""Generate the golden bundle vectors in tests/vectors/bundles/ (and, once, their fixtures).

    .venv/bin/python tests/vectors/make_bundle_vectors.py             # vectors from fixtures
    .venv/bin/python tests/vectors/make_bundle_vectors.py --fixtures  # new test PKI (rare)

The fixtures in tests/vectors/fixtures/ are a test-only PKI made once and committed: a root
CA, a second root, a device certificate with its key (plain and encrypted) and a bundle
signing key. They are valid from 2025-01-01 for a century so the vectors never expire.
Regenerating the fixtures changes every vector; do it only with a format version bump.

ECDSA signatures are randomized, so a vector whose digest did not change keeps the
signature already on file: re-running the script is a no-op unless the format changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from provision.bundle import format as fmt
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
OUT = HERE / "bundles"
PASSWORD = b"test-only-password"
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def make_fixtures() -> None:
    from provision.pki.authority import create_root_ca
    from provision.pki.certs import cert_der, cert_pem
    from provision.pki.keys import generate_key, public_key_der, serialize_private_key

    FIXTURES.mkdir(exist_ok=True)
    root = create_root_ca("Provision Test Root", days=36500, now=EPOCH)
    other = create_root_ca("Provision Test Other Root", days=36500, now=EPOCH)
    key, cert = root.issue_client("dev-0001", days=36500, now=EPOCH)
    signer = generate_key()
    files = {
        "root-ca.pem": cert_pem(root.cert),
        "root-ca.der": cert_der(root.cert),
        "other-root.pem": cert_pem(other.cert),
        "device.pem": cert_pem(cert),
        "device.der": cert_der(cert),
        "device.key": serialize_private_key(key, encoding="pem"),
        "device.key.der": serialize_private_key(key, encoding="der"),
        "device-encrypted.key": serialize_private_key(key, encoding="pem", password=PASSWORD),
        "device-encrypted.pw": PASSWORD + b"\n",
        "psk.hex": bytes(range(32)).hex().encode() + b"\n",
        "signer.key": serialize_private_key(signer, encoding="pem"),
        "signer.pub.der": public_key_der(signer),
    }
    for name, data in files.items():
        (FIXTURES / name).write_bytes(data)
    print(f"wrote {len(files)} fixtures to {FIXTURES}")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def vector_sets() -> list[tuple[str, str, CredentialSet, bool]]:
    """(name, description, credentials, signed) for every vector."""
    root_der = fixture("root-ca.der")
    dev_der = fixture("device.der")
    key_der = fixture("device.key.der")
    typical = CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.DER, root_der),
            Slot(42, SlotType.CLIENT_CERT, Encoding.DER, dev_der),
            Slot(42, SlotType.CLIENT_KEY, Encoding.DER, key_der),
        ],
        device_id="dev-0001",
    )
    psk = (
        Slot(7, SlotType.PSK, Encoding.RAW, bytes(range(32))),
        Slot(7, SlotType.PSK_IDENTITY, Encoding.RAW, b"dev-0001-psk"),
    )
    return [
        (
            "empty",
            "no records, no device id: the smallest valid bundle",
            CredentialSet.of([]),
            False,
        ),
        (
            "minimal",
            "one root_ca (DER) in sec_tag 1, no device id",
            CredentialSet.of([Slot(1, SlotType.ROOT_CA, Encoding.DER, root_der)]),
            False,
        ),
        (
            "typical",
            "a device set in sec_tag 42: root_ca, client_cert, client_key (PKCS#8), all DER; "
            "what `bundle pack --encoding der` makes from the fixtures",
            typical,
            False,
        ),
        (
            "multi_root_encrypted",
            "sec_tag 16842753 with two root_ca (PEM), client_cert PEM, an encrypted PKCS#8 "
            "client_key (flag ENCRYPTED) and its key_password",
            CredentialSet.of(
                [
                    Slot(16842753, SlotType.ROOT_CA, Encoding.PEM, fixture("root-ca.pem")),
                    Slot(16842753, SlotType.ROOT_CA, Encoding.PEM, fixture("other-root.pem")),
                    Slot(16842753, SlotType.CLIENT_CERT, Encoding.PEM, fixture("device.pem")),
                    Slot(
                        16842753,
                        SlotType.CLIENT_KEY,
                        Encoding.PEM,
                        fixture("device-encrypted.key"),
                        SlotFlags.ENCRYPTED,
                    ),
                    Slot(16842753, SlotType.KEY_PASSWORD, Encoding.RAW, PASSWORD),
                ],
                device_id="dev-0001",
            ),
            False,
        ),
        (
            "signed",
            "the typical set, signed (ECDSA P-256, raw r||s) with fixtures/signer.key",
            typical,
            True,
        ),
        ("psk", "a PSK (32 bytes) and its identity in sec_tag 7", CredentialSet.of(psk), False),
        (
            "two_tags",
            "the typical set in sec_tag 42 and the PSK pair in sec_tag 7, in canonical order",
            CredentialSet.of([*typical.slots, *psk], device_id="dev-0001"),
            False,
        ),
    ]


def describe(name: str, description: str, data: bytes) -> dict[str, object]:
    decoded = fmt.decode(data)
    sig = decoded.signature
    return {
        "name": name,
        "description": description,
        "format_version": fmt.FORMAT_VERSION,
        "size": len(data),
        "device_id": decoded.credentials.device_id,
        "header_flags": data[5],
        "record_count": len(decoded.credentials),
        "records": [
            {
                "sec_tag": s.sec_tag,
                "slot": int(s.type),
                "slot_name": s.type.label,
                "encoding": int(s.encoding),
                "flags": int(s.flags),
                "length": len(s.data),
                "payload": s.data.hex(),
            }
            for s in decoded.credentials
        ],
        "digest": decoded.digest.hex(),
        "key_id": sig.key_id.hex() if sig else None,
        "signature": sig.signature.hex() if sig else None,
        "hex": data.hex(),
    }


def make_vectors() -> None:
    from provision.pki.keys import load_private_key
    from provision.pki.signing import sign_digest

    signer = load_private_key(fixture("signer.key"), None, "signer.key")
    OUT.mkdir(exist_ok=True)
    for name, description, credentials, signed in vector_sets():
        path = OUT / f"{name}.json"
        if signed:
            digest = fmt.signing_digest(credentials)
            old = json.loads(path.read_text()) if path.exists() else {}
            if old.get("digest") == digest.hex() and old.get("signature"):
                sig = fmt.BundleSignature(
                    bytes.fromhex(old["key_id"]), bytes.fromhex(old["signature"])
                )
            else:
                sig = fmt.BundleSignature(*sign_digest(signer, digest))
            data = fmt.encode(credentials, sig)
        else:
            data = fmt.encode(credentials)
        path.write_text(json.dumps(describe(name, description, data), indent=1) + "\n")
        print(f"{path.relative_to(HERE)}: {len(data)} bytes")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", action="store_true", help="make a new test PKI first")
    args = parser.parse_args(argv)
    if args.fixtures:
        make_fixtures()
    make_vectors()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
