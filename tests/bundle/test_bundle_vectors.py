"""Golden bundle vectors: build → hex and hex → fields, both ways (the C stub reads them too)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.bundle import format as fmt
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.pki.signing import verify_digest

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bundles"

NAMES = sorted(p.stem for p in VECTORS.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((VECTORS / f"{name}.json").read_text())


def test_the_documented_vectors_exist() -> None:
    assert {"empty", "minimal", "typical", "multi_root_encrypted", "signed", "psk"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_parse_gives_the_fields(name: str) -> None:
    v = load(name)
    data = bytes.fromhex(v["hex"])
    decoded = fmt.decode(data)
    assert decoded == fmt.decode_checked(data)
    assert len(data) == v["size"]
    assert data[4] == v["format_version"] and data[5] == v["header_flags"]
    assert decoded.credentials.device_id == v["device_id"]
    assert decoded.digest.hex() == v["digest"]
    got = [
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
    ]
    assert got == v["records"] and len(got) == v["record_count"]
    if v["signature"] is None:
        assert decoded.signature is None
    else:
        assert decoded.signature.key_id.hex() == v["key_id"]
        assert decoded.signature.signature.hex() == v["signature"]


@pytest.mark.parametrize("name", NAMES)
def test_build_gives_the_hex(name: str) -> None:
    v = load(name)
    credentials = CredentialSet.of(
        [
            Slot(
                r["sec_tag"],
                SlotType(r["slot"]),
                Encoding(r["encoding"]),
                bytes.fromhex(r["payload"]),
                SlotFlags(r["flags"]),
            )
            for r in v["records"]
        ],
        device_id=v["device_id"],
    )
    signature = None
    if v["signature"] is not None:
        signature = fmt.BundleSignature(bytes.fromhex(v["key_id"]), bytes.fromhex(v["signature"]))
    assert fmt.encode(credentials, signature).hex() == v["hex"]
    assert fmt.build_checked(credentials, signature).hex() == v["hex"]


def test_signed_vector_verifies_with_the_fixture_key_only() -> None:
    v = load("signed")
    pub = (FIXTURES / "signer.pub.der").read_bytes()
    digest, kid, sig = (bytes.fromhex(v[k]) for k in ("digest", "key_id", "signature"))
    assert verify_digest(pub, digest, kid, sig)
    assert not verify_digest(pub, bytes(32), kid, sig)
    other = (FIXTURES / "root-ca.pem").read_bytes()
    assert not verify_digest(other, digest, kid, sig)


def test_signed_and_typical_share_records_but_not_digest() -> None:
    signed, typical = load("signed"), load("typical")
    assert signed["records"] == typical["records"]
    assert signed["digest"] != typical["digest"]  # the signed flag is covered


def test_cli_pack_of_fixtures_reproduces_the_typical_vector(run, tmp_path: Path) -> None:
    out = tmp_path / "b.prvb"
    result = run(
        "bundle", "pack", "--tag", 42,
        "--root-ca", FIXTURES / "root-ca.pem",
        "--client-cert", FIXTURES / "device.pem",
        "--client-key", FIXTURES / "device.key",
        "--device-id", "dev-0001", "--encoding", "der", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.read_bytes().hex() == load("typical")["hex"]


def _der_integer(value: bytes) -> bytes:
    value = value.lstrip(b"\x00") or b"\x00"
    if value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + bytes([len(value)]) + value


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_agrees_on_digest_and_signature(tmp_path: Path) -> None:
    """An independent peer: openssl recomputes the SHA-256 and verifies the r||s signature."""
    v = load("signed")
    data = bytes.fromhex(v["hex"])
    body = tmp_path / "body.bin"
    body.write_bytes(data[: -(32 + 72)])
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-r", str(body)], capture_output=True, check=True
    )
    assert out.stdout.split()[0].decode() == v["digest"]
    sig = bytes.fromhex(v["signature"])
    seq = _der_integer(sig[:32]) + _der_integer(sig[32:])
    (tmp_path / "sig.der").write_bytes(b"\x30" + bytes([len(seq)]) + seq)
    (tmp_path / "digest.bin").write_bytes(bytes.fromhex(v["digest"]))
    verify = [
        "openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
        "-inkey", str(FIXTURES / "signer.pub.der"),
        "-in", str(tmp_path / "digest.bin"), "-sigfile", str(tmp_path / "sig.der"),
    ]  # fmt: skip
    ok = subprocess.run(verify, capture_output=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "digest.bin").write_bytes(bytes(32))
    assert subprocess.run(verify, capture_output=True).returncode != 0
