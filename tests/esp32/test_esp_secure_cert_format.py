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
from pem_files import key_file, self_signed

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


# -- entries that tie the key to the chip's eFuse keys, and entries from files


def _espressif(tool: Path, cwd: Path, *args: object) -> Path:
    subprocess.run(
        [sys.executable, tool, *map(str, args), "--skip_flash"],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return cwd / "esp_secure_cert_data"


def _entries(data: bytes) -> list[tuple[int, int, int, bytes]]:
    return [(e.type, e.subtype, e.flags, e.data) for e in esc.decode(data).entries]


def test_rsa_ds_image_equals_espressif_tool_output_given_its_iv(tmp_path, espressif_tool) -> None:
    # The tool draws the DS IV at random: with its IV ours is the same image, byte for byte.
    from cryptography.hazmat.primitives.asymmetric import rsa

    from provision.dialects import esp32_image
    from provision.dialects import esp32_keys as ks
    from provision.packing import read_credentials

    key = rsa.generate_private_key(65537, 2048)
    key_path, cert = key_file(key, tmp_path / "rsa.key"), self_signed(key, tmp_path / "rsa.pem")
    hmac_key = tmp_path / "hmac.bin"
    hmac_key.write_bytes(os.urandom(32))
    theirs = (
        _espressif(
            espressif_tool,
            tmp_path,
            "--ca-cert",
            FIXTURES / "root-ca.pem",
            "--device-cert",
            cert,
            "--private-key",
            key_path,
            "--target_chip",
            "esp32c3",
            "--configure_ds",
            "--priv_key_algo",
            "RSA",
            "2048",
            "--efuse_key_id",
            "1",
            "--efuse_key_file",
            hmac_key,
        )
        / "esp_secure_cert.bin"
    ).read_bytes()
    from provision.bundle.spec import PackSources, TagSources

    creds = read_credentials(
        PackSources(
            tags=(
                TagSources(
                    sec_tag=1,
                    root_ca=(FIXTURES / "root-ca.pem",),
                    client_cert=cert,
                    client_key=key_path,
                ),
            ),
            encoding="pem",
        )
    )
    iv = esc.DsData.parse(esc.decode(theirs).entries[0].data).iv
    protection = ks.Protection(
        ks.KeyStorage.RSA_DS, "esp32c3", hmac_key.read_bytes(), 1, iv=bytes(iv)
    )
    image, _, warnings = esp32_image.build(creds, protection=protection)
    assert image == theirs
    assert [t[:3] for t in _entries(image)] == [
        (3, 0, 0),
        (4, 0, 0),
        (0, 0, 0),
        (1, 0, 0),
        (9, 0, 0),
    ]
    (need,) = [w for w in warnings if w.code == "esp_secure_cert.efuse_required"]
    assert "HMAC_DOWN_DIGITAL_SIGNATURE" in need.message and "does not burn eFuses" in need.message


def test_ecdsa_peripheral_image_matches_espressif_tool_but_keeps_no_key_in_flash(
    cli, tmp_path, espressif_tool
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    key_path, cert = key_file(key, tmp_path / "ec.key"), self_signed(key, tmp_path / "ec.pem")
    theirs = (
        _espressif(
            espressif_tool,
            tmp_path,
            "--device-cert",
            cert,
            "--private-key",
            key_path,
            "--target_chip",
            "esp32h2",
            "--configure_ds",
            "--priv_key_algo",
            "ECDSA",
            "256",
            "--efuse_key_id",
            "2",
        )
        / "esp_secure_cert.bin"
    ).read_bytes()
    ours = tmp_path / "ours.bin"
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", "--tag", "1", "--client-cert",
             cert, "--client-key", key_path, "--esp-key-storage", "ecdsa-peripheral",
             "--esp-chip", "esp32h2", "--esp-efuse-key-id", "2", "--json", "-o", ours])  # fmt: skip
    assert r.exit_code == 0, r.output
    mine, their = _entries(ours.read_bytes()), _entries(theirs)
    # Same entries, flags and SEC_CFG (block 6 = BLOCK_KEY2); their tool also leaves the key
    # in the clear in the PRIV_KEY entry, ours leaves it empty (it lives in eFuse).
    assert [t[:3] for t in mine] == [t[:3] for t in their] == [
        (6, 0, 0), (1, 0, 0), (2, 0, 0x08), (9, 0, 0)
    ]  # fmt: skip
    assert mine[0] == their[0] and mine[1] == their[1]
    assert their[2][3].startswith(b"-----BEGIN EC PRIVATE KEY") and mine[2][3] == b""
    findings = json.loads(r.output)["findings"]
    assert any("BLOCK_KEY2 with purpose ECDSA_KEY" in f["message"] for f in findings)


def test_a_signature_block_from_espressifs_tool_rebuilds_its_signed_image(
    cli, tmp_path, espressif_tool
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    signer = key_file(ec.generate_private_key(ec.SECP256R1()), tmp_path / "sign.key")
    signed = (
        _espressif(
            espressif_tool,
            tmp_path,
            "--ca-cert",
            FIXTURES / "root-ca.pem",
            "--device-cert",
            FIXTURES / "device.pem",
            "--private-key",
            FIXTURES / "device.key",
            "--target_chip",
            "esp32c3",
            "--secure-sign",
            "--signing-scheme",
            "ecdsa256",
            "--signing-key-file",
            signer,
        )
        / "esp_secure_cert_signed.bin"
    ).read_bytes()
    block = next(e for e in esc.decode(signed).entries if e.type == esc.TlvType.SIGNATURE_BLOCK)
    block_file = tmp_path / "sig.bin"
    block_file.write_bytes(block.data)
    ours = tmp_path / "ours.bin"
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET,
             "--esp-entry", f"signature_block={block_file}", "-o", ours])  # fmt: skip
    assert r.exit_code == 0, r.output
    # Their file ends in a 4-byte end marker (0x0000FFFF), not the magic either.
    assert signed == ours.read_bytes() + bytes.fromhex("ffff0000")
    r = cli(["bundle", "inspect", "--json", ours])
    sig = next(e for e in json.loads(r.output)["entries"] if e["type"] == "signature_block")
    assert sig["algorithm"] == "ecdsa256"
    assert (sig["signed_offset"], sig["signed_length"]) == (0, sig["offset"])


def test_hmac_encrypted_key_decrypts_as_the_chip_derives_key_and_iv(cli, tmp_path) -> None:
    import hashlib
    import hmac
    import struct

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    efuse = tmp_path / "hmac.bin"
    efuse.write_bytes(os.urandom(32))
    plain, sealed = tmp_path / "plain.bin", tmp_path / "sealed.bin"
    assert (
        cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, "-o", plain]).exit_code == 0
    )
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, "--esp-key-storage",
             "hmac-encrypted", "--esp-chip", "esp32c3", "--esp-efuse-key-file", efuse,
             "-o", sealed])  # fmt: skip
    assert r.exit_code == 0, r.output
    key_entry = esc.decode(sealed.read_bytes()).entries[2]
    assert key_entry.type == esc.TlvType.PRIV_KEY and key_entry.flags == 0x80
    # esp_secure_cert_tlv_read.c: AES-256-GCM, key HMAC(eFuse key, 32 x 0xFF), IV the first 16
    # bytes of HMAC(eFuse key, 8 words 0xABCDABCD), tag last.
    k = efuse.read_bytes()
    aes = hmac.new(k, b"\xff" * 32, hashlib.sha256).digest()
    iv = hmac.new(k, struct.pack("<8I", *[0xABCDABCD] * 8), hashlib.sha256).digest()[:16]
    assert (
        AESGCM(aes).decrypt(iv, key_entry.data, None)
        == esc.decode(plain.read_bytes()).entries[2].data
    )
    report = json.loads(cli(["bundle", "inspect", "--json", sealed]).output)
    assert report["entries"][2]["storage"] == "hmac_encrypted"


def test_hmac_derived_storage_writes_salt_and_marker_and_checks_the_cert(cli, tmp_path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    efuse, salt = tmp_path / "hmac.bin", tmp_path / "salt.bin"
    efuse.write_bytes(os.urandom(32))
    salt.write_bytes(os.urandom(32))
    # The chip's key: PBKDF2-HMAC-SHA256(eFuse key, salt, 2048, 32), a P-256 scalar.
    scalar = PBKDF2HMAC(hashes.SHA256(), 32, salt.read_bytes(), 2048).derive(efuse.read_bytes())
    derived = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())
    cert = self_signed(derived, tmp_path / "derived.pem")
    args = ["bundle", "pack", "--format", "esp-secure-cert", "--tag", "1", "--esp-key-storage",
            "hmac-derived", "--esp-chip", "esp32s3", "--esp-efuse-key-file", efuse,
            "--esp-salt-file", salt]  # fmt: skip
    out = tmp_path / "ok.bin"
    r = cli([*args, "--client-cert", cert, "-o", out])
    assert r.exit_code == 0, r.output
    assert [t[:3] for t in _entries(out.read_bytes())] == [
        (1, 0, 0), (5, 0, 0), (2, 0, 0x40), (9, 0, 0)
    ]  # fmt: skip
    assert _entries(out.read_bytes())[1][3] == salt.read_bytes()
    assert _entries(out.read_bytes())[2][3] == b""
    bad = tmp_path / "bad.bin"
    r = cli([*args, "--client-cert", FIXTURES / "device.pem", "-o", bad])
    assert r.exit_code == ExitCode.POLICY, r.output
    assert "not the key this eFuse key and salt derive" in r.output and not bad.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--esp-key-storage", "rsa-ds", "--esp-chip", "esp32", "--esp-efuse-key-id", "1"],
         "has no HMAC peripheral"),
        (["--esp-key-storage", "ecdsa-peripheral", "--esp-chip", "esp32c3",
          "--esp-efuse-key-id", "1"], "has no ECDSA peripheral"),
        (["--esp-key-storage", "hmac-encrypted"], "name the chip"),
        (["--esp-key-storage", "ecdsa-peripheral", "--esp-chip", "esp32c5"],
         "give the eFuse key block"),
    ],
)  # fmt: skip
def test_preflight_refuses_a_key_storage_the_chip_cannot_do(cli, tmp_path, extra, message) -> None:
    out = tmp_path / "x.bin"
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, *extra, "-o", out])
    assert r.exit_code == ExitCode.POLICY, r.output
    assert message in r.output and not out.exists()


def test_entries_from_files_are_checked_for_their_layout_and_span(cli, tmp_path) -> None:
    context = tmp_path / "ctx.bin"
    context.write_bytes(b"\x00\x01\x02")
    out = tmp_path / "x.bin"
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET,
             "--esp-entry", f"ds_context={context}", "-o", out])  # fmt: skip
    assert r.exit_code == ExitCode.POLICY and "does not have its layout" in r.output
    block = tmp_path / "sig.bin"
    block.write_bytes(esc.SignatureBlock.build(
        {"version": 1, "offset": 0, "length": 16, "algorithm": 2, "key_and_signature": b"\0" * 129}
    ))  # fmt: skip
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET,
             "--esp-entry", f"signature_block={block}", "-o", out])  # fmt: skip
    assert r.exit_code == ExitCode.POLICY and "signs 16 bytes at offset 0" in r.output
    r = cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET,
             "--esp-entry", f"priv_key={block}", "-o", out])  # fmt: skip
    assert r.exit_code == ExitCode.USAGE and not out.exists()


def test_esp_options_are_a_usage_error_for_a_bundle(cli, tmp_path) -> None:
    out = tmp_path / "x.prvb"
    r = cli(["bundle", "pack", *PEM_SET, "--esp-efuse-key-id", "1", "-o", out])
    assert r.exit_code == ExitCode.USAGE and "--format esp-secure-cert" in r.output
    assert not out.exists()
