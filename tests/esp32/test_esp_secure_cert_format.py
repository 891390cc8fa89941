"""The esp_secure_cert image: golden vectors, Espressif's own tool as the peer, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from provision.bundle import esp_secure_cert as esc
from provision.errors import BundleError, ExitCode

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "esp_secure_cert"

PEM_SET = [
    "--tag",
    "1",
    "--root-ca",
    FIXTURES / "root-ca.pem",
    "--client-cert",
    FIXTURES / "device.pem",
    "--client-key",
    FIXTURES / "device.key",
]


def _vectors() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(VECTORS.glob("*.json"))]


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_golden_vector_encodes_and_decodes_both_ways(vector: dict) -> None:
    entries = [
        esc.Entry(e["type"], e["subtype"], bytes.fromhex(e["data"]), e["flags"])
        for e in vector["entries"]
    ]
    image = bytes.fromhex(vector["hex"])
    assert esc.encode(entries) == image
    decoded = esc.decode(esc.partition_image(image))
    assert list(decoded.entries[:-1]) == entries
    assert decoded.entries[-1].type == esc.TlvType.INTEGRITY
    assert decoded.integrity is True
    assert decoded.used == len(image)


def test_entry_layout_is_header_data_padding_crc() -> None:
    image = esc.encode([esc.Entry(esc.TlvType.USER_DATA_1, 3, b"abc", 0x08)], integrity=False)
    assert image[:4] == bytes.fromhex("11ba5eba")
    assert image[4:12] == bytes([0x08, 0, 0, 0, 51, 3, 3, 0])
    assert image[12:15] == b"abc" and image[15:28] == b"\x00" * 13
    assert len(image) == 32
    import zlib

    assert int.from_bytes(image[28:], "little") == zlib.crc32(image[:28], 0xFFFFFFFF)


def test_flipped_byte_is_a_crc_error_and_a_stale_tail_is_not_read() -> None:
    image = bytearray(esc.encode([esc.Entry(0, 0, b"x" * 40)]))
    image[20] ^= 1
    with pytest.raises(BundleError, match="CRC32 mismatch"):
        esc.decode(bytes(image))
    one = esc.encode([esc.Entry(0, 0, b"new")], integrity=False)
    assert len(esc.decode(esc.partition_image(one)).entries) == 1
    with pytest.raises(ValueError, match="does not fit"):
        esc.partition_image(b"\x00" * 0x2001)


def _espressif_image(tool: Path, cwd: Path, *args: object) -> bytes:
    subprocess.run(
        [sys.executable, tool, *map(str, args), "--skip_flash", "--target_chip", "esp32"],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return (cwd / "esp_secure_cert_data" / "esp_secure_cert.bin").read_bytes()


def test_image_equals_espressif_tool_output_for_pem_inputs(cli, tmp_path, espressif_tool) -> None:
    ours = tmp_path / "ours.bin"
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, "-o", ours])
    assert r.exit_code == 0, r.output
    theirs = _espressif_image(
        espressif_tool,
        tmp_path,
        "--ca-cert",
        FIXTURES / "root-ca.pem",
        "--device-cert",
        FIXTURES / "device.pem",
        "--private-key",
        FIXTURES / "device.key",
    )
    assert ours.read_bytes() == theirs
    assert os.stat(ours).st_mode & 0o777 == 0o600


def test_image_equals_espressif_tool_output_for_der_inputs(cli, tmp_path, espressif_tool) -> None:
    ours = tmp_path / "ours.bin"
    r = cli(
        [
            "bundle",
            "pack",
            "--format",
            "esp-secure-cert",
            "--encoding",
            "der",
            "--tag",
            "1",
            "--root-ca",
            FIXTURES / "root-ca.der",
            "--client-cert",
            FIXTURES / "device.der",
            "--client-key",
            FIXTURES / "device.key.der",
            "-o",
            ours,
        ]
    )
    assert r.exit_code == 0, r.output
    theirs = _espressif_image(
        espressif_tool,
        tmp_path,
        "--ca-cert",
        FIXTURES / "root-ca.der",
        "--device-cert",
        FIXTURES / "device.der",
        "--private-key",
        FIXTURES / "device.key.der",
    )
    assert ours.read_bytes() == theirs


def test_espressif_parser_reads_our_image_to_the_same_contents(cli, tmp_path) -> None:
    tlv_parser = pytest.importorskip("esp_secure_cert.tlv_parser")
    from esp_secure_cert.tlv_format_construct import EspSecureCert

    ours = tmp_path / "ours.bin"
    r = cli(
        [
            "bundle",
            "pack",
            "--format",
            "esp-secure-cert",
            "--tag",
            "1",
            "--root-ca",
            FIXTURES / "other-root.pem",
            *PEM_SET[2:],
            "-o",
            ours,
        ]
    )
    assert r.exit_code == 0, r.output
    # Their parser on the whole partition as it sits in flash (erased tail).
    part = tmp_path / "partition.bin"
    part.write_bytes(esc.partition_image(ours.read_bytes()))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        tlv_parser.process_tlv_entries(str(part))
    text = out.getvalue()
    assert text.count("✓ VALID") == 5 and "INVALID" not in text
    theirs = [
        (e["header"]["type"], e["header"]["subtype"], e["header"]["flags"], e["data"])
        for e in EspSecureCert._parse_tlv_entries_from_bin(str(part))
    ]
    mine = [(e.type, e.subtype, e.flags, e.data) for e in esc.decode(part.read_bytes()).entries]
    assert theirs == mine
    assert [t[:2] for t in theirs] == [(0, 0), (0, 1), (1, 0), (2, 0), (9, 0)]
    key = serialization.load_pem_private_key(theirs[3][3].rstrip(b"\0"), None)
    fixture = serialization.load_pem_private_key((FIXTURES / "device.key").read_bytes(), None)
    assert key.private_numbers() == fixture.private_numbers()


def test_inspect_json_lists_entries_with_key_as_digest_only(cli, tmp_path) -> None:
    ours = tmp_path / "ours.bin"
    assert (
        cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, "-o", ours]).exit_code == 0
    )
    r = cli(["bundle", "inspect", "--json", ours])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["format"] == "esp-secure-cert" and report["integrity"] == "ok"
    assert [e["type"] for e in report["entries"]] == [
        "ca_cert",
        "dev_cert",
        "priv_key",
        "integrity",
    ]
    assert report["entries"][1]["subject"] == "CN=dev-0001"
    assert report["entries"][2]["storage"] == "plain"
    assert "PRIVATE KEY" not in r.output


def test_inspect_of_a_corrupted_image_exits_4(cli, tmp_path) -> None:
    ours = tmp_path / "ours.bin"
    assert (
        cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, "-o", ours]).exit_code == 0
    )
    data = bytearray(ours.read_bytes())
    data[100] ^= 0xFF
    ours.write_bytes(bytes(data))
    r = cli(["bundle", "inspect", ours])
    assert r.exit_code == 4
    assert "CRC32 mismatch" in r.output


def test_encrypted_key_is_decrypted_on_the_host_with_a_flash_encryption_warning(
    cli, tmp_path
) -> None:
    ours = tmp_path / "ours.bin"
    r = cli(
        [
            "bundle",
            "pack",
            "--format",
            "esp-secure-cert",
            "--json",
            "--tag",
            "1",
            "--client-cert",
            FIXTURES / "device.pem",
            "--client-key",
            FIXTURES / "device-encrypted.key",
            "--key-password-file",
            FIXTURES / "device-encrypted.pw",
            "-o",
            ours,
        ]
    )
    assert r.exit_code == 0, r.output
    codes = [f["code"] for f in json.loads(r.output)["findings"]]
    assert "esp_secure_cert.key_decrypted" in codes
    key_entry = esc.decode(ours.read_bytes()).entries[1]
    assert key_entry.type == esc.TlvType.PRIV_KEY
    assert b"ENCRYPTED" not in key_entry.data
    serialization.load_pem_private_key(key_entry.data.rstrip(b"\0"), None)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--psk-identity", "dev-1"], "no entry for psk_identity"),
        (["--partition-size", "0x400"], "the partition holds 1024"),
    ],
)
def test_preflight_refuses_what_the_partition_cannot_hold(cli, tmp_path, extra, message) -> None:
    out = tmp_path / "x.bin"
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, *extra, "-o", out])
    # What the partition cannot hold is a policy refusal, as from `device write`.
    assert r.exit_code == ExitCode.POLICY, r.output
    assert message in r.output
    assert not out.exists()


def test_preflight_refuses_an_ed25519_key(cli, tmp_path) -> None:
    key = tmp_path / "ed.key"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    out = tmp_path / "x.bin"
    r = cli(
        [
            "bundle",
            "pack",
            "--format",
            "esp-secure-cert",
            "--tag",
            "1",
            "--client-key",
            key,
            "-o",
            out,
            "--target",
            "default",
        ]
    )
    assert r.exit_code == ExitCode.POLICY, r.output
    assert "RSA or ECDSA keys only" in r.output
    assert not out.exists()


def test_a_client_cert_chain_keeps_every_certificate(cli, tmp_path) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        (FIXTURES / "device.pem").read_bytes() + (FIXTURES / "root-ca.pem").read_bytes()
    )
    out = tmp_path / "x.bin"
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", "--tag", "1",
             "--client-cert", chain, "-o", out])  # fmt: skip
    assert r.exit_code == 0, r.output
    dev_cert = esc.decode(out.read_bytes()).entries[0]
    assert dev_cert.data.count(b"BEGIN CERTIFICATE") == 2 and dev_cert.data.endswith(b"\0")
