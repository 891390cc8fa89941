"""The legacy cust_flash layout of esp_secure_cert: Espressif's own tool as the peer, inspect,
what the fixed slots refuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pem_files import key_file, self_signed

from provision.bundle import esp_cust_flash as cf
from provision.bundle import esp_secure_cert as esc
from provision.errors import BundleError, ExitCode

FIXTURES = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
ROOT, DEVICE, KEY = FIXTURES / "root-ca.pem", FIXTURES / "device.pem", FIXTURES / "device.key"
PACK = ["bundle", "pack", "--format", "esp-secure-cert", "--esp-layout", "cust_flash"]
PEM_SET = ["--tag", "1", "--root-ca", ROOT, "--client-cert", DEVICE, "--client-key", KEY]


def _espressif_cust_flash(tool: Path, cwd: Path, device: Path, ca: Path | None, key: Path) -> bytes:
    """The tool's `--secure_cert_type cust_flash --skip_flash` image. In 2.6.1 that command
    line stops with UnboundLocalError (its cust_flash branch reads `bin_filename`, which
    main() assigns only in the TLV branch); then we call the function that branch calls, with
    the arguments it passes."""
    args = [sys.executable, tool, "--skip_flash", "--target_chip", "esp32", "--secure_cert_type",
            "cust_flash", "--device-cert", device, "--private-key", key]  # fmt: skip
    if ca is not None:
        args += ["--ca-cert", ca]
    run = subprocess.run(list(map(str, args)), cwd=cwd, capture_output=True, text=True, timeout=120)
    out = cwd / "esp_secure_cert_data" / "esp_secure_cert.bin"
    if run.returncode == 0:
        return out.read_bytes()
    assert "UnboundLocalError" in run.stderr and "bin_filename" in run.stderr, run.stderr
    from esp_secure_cert import custflash_format

    custflash_format.generate_partition_no_ds(
        str(device), str(ca) if ca else None, str(key), None, "esp32", str(out)
    )
    return out.read_bytes()


@pytest.mark.parametrize(
    "files",
    [(ROOT, DEVICE, KEY, "pem"), (FIXTURES / "root-ca.der", FIXTURES / "device.der",
                                  FIXTURES / "device.key.der", "der")],
    ids=["pem", "der"],
)  # fmt: skip
def test_image_equals_espressif_tool_output(cli, tmp_path, espressif_tool, files) -> None:
    ca, device, key, encoding = files
    ours = tmp_path / "ours.bin"
    r = cli([*PACK, "--encoding", encoding, "--tag", "1", "--root-ca", ca,
             "--client-cert", device, "--client-key", key, "-o", ours])  # fmt: skip
    assert r.exit_code == 0, r.output
    theirs = _espressif_cust_flash(espressif_tool, tmp_path, device, ca, key)
    assert len(theirs) == cf.IMAGE_SIZE
    assert ours.read_bytes() == theirs
    assert os.stat(ours).st_mode & 0o777 == 0o600


def test_without_a_ca_espressifs_image_is_one_byte_longer(cli, tmp_path, espressif_tool) -> None:
    # Their tool writes the missing CA's NUL with a slice assignment that inserts a byte:
    # the file is 0x6001 bytes, the slots still at their offsets (documented difference).
    ours = tmp_path / "ours.bin"
    r = cli([*PACK, "--tag", "1", "--client-cert", DEVICE, "--client-key", KEY, "-o", ours])
    assert r.exit_code == 0, r.output
    theirs = _espressif_cust_flash(espressif_tool, tmp_path, DEVICE, None, KEY)
    assert theirs[: cf.IMAGE_SIZE] == ours.read_bytes() and theirs[cf.IMAGE_SIZE :] == b"\xff"
    image = cf.decode(ours.read_bytes())
    assert image.ca_cert is None and image.dev_cert == DEVICE.read_bytes().strip() + b"\n\0"


@pytest.mark.parametrize(("chip", "slot"), [("esp32c3", 1216), ("esp32s3", 1600)])
def test_ds_image_equals_espressif_tool_output_given_its_iv(
    cli, tmp_path, espressif_tool, chip, slot
) -> None:
    # The 2.6.1 command line passes no DS data to its cust_flash writer (c, iv are None):
    # their DS parameters and writer functions, called as that branch means to, are the peer.
    from esp_secure_cert import configure_ds, custflash_format

    from provision.bundle.spec import PackSources, TagSources
    from provision.dialects import cust_flash_image
    from provision.dialects import esp32_keys as ks
    from provision.packing import read_credentials

    key = rsa.generate_private_key(65537, 2048)
    key_path, cert = key_file(key, tmp_path / "rsa.key"), self_signed(key, tmp_path / "rsa.pem")
    efuse_key = os.urandom(32)
    c, iv, bits = configure_ds.calculate_rsa_ds_params(str(key_path), None, efuse_key, chip)
    theirs = tmp_path / "theirs.bin"
    custflash_format.generate_partition_ds(c, iv, 2, bits, str(cert), str(ROOT), chip, str(theirs))
    creds = read_credentials(
        PackSources(
            (TagSources(sec_tag=1, root_ca=(ROOT,), client_cert=cert, client_key=key_path),),
            encoding="pem",
        )
    )
    protection = ks.Protection(ks.KeyStorage.RSA_DS, chip, efuse_key, 2, iv=iv)
    image, items, warnings = cust_flash_image.build(creds, protection=protection)
    assert image == theirs.read_bytes()
    assert items.priv_key is None and items.ds is not None and items.ds.rsa_bits == 2048
    assert [s.offset for s in cf.slots(items)][-1] == cf.KEY_OFFSET + slot
    assert any(w.code == "esp_secure_cert.efuse_required" for w in warnings)
    # inspect names the DS variant and keeps the ciphertext a digest
    out = tmp_path / "ds.bin"
    out.write_bytes(image)
    report = json.loads(cli(["bundle", "inspect", "--json", out]).output)
    assert report["variant"] == "ds"
    assert [e["type"] for e in report["entries"]] == [
        "dev_cert",
        "ca_cert",
        "ds_ciphertext",
        "ds_iv",
    ]
    assert report["entries"][2]["efuse_key_id"] == 2 and report["entries"][2]["rsa_bits"] == 2048


def test_inspect_round_trips_and_holds_the_tlv_images_items(cli, tmp_path) -> None:
    legacy, tlv = tmp_path / "legacy.bin", tmp_path / "tlv.bin"
    assert cli([*PACK, *PEM_SET, "-o", legacy]).exit_code == 0
    assert (
        cli(["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, "-o", tlv]).exit_code == 0
    )
    r = cli(["bundle", "inspect", "--json", legacy])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["layout"] == "cust_flash" and report["legacy"] is True
    assert report["size"] == cf.IMAGE_SIZE and "PRIVATE KEY" not in r.output
    rows = {e["type"]: e for e in report["entries"]}
    assert (rows["dev_cert"]["offset"], rows["ca_cert"]["offset"], rows["priv_key"]["offset"]) == (
        64,
        64 + 2048,
        64 + 2048 + 4096,
    )
    assert rows["dev_cert"]["subject"] == "CN=dev-0001" and rows["priv_key"]["storage"] == "plain"
    # The same item bytes as the TLV image's entries (one serialization for both layouts).
    tlv_rows = json.loads(cli(["bundle", "inspect", "--json", tlv]).output)["entries"]
    assert {e["type"]: e["sha256"] for e in tlv_rows if e["type"] != "integrity"} == {
        t: e["sha256"] for t, e in rows.items()
    }
    data = legacy.read_bytes()
    assert cf.encode(cf.decode(data)) == data
    table = cli(["bundle", "inspect", legacy])
    assert table.exit_code == 0 and "legacy cust_flash layout (plain)" in table.output


@pytest.mark.parametrize(
    ("offset", "message"), [(0x40 + 100, "dev_cert"), (0x1840 + 5, "priv_key")]
)
def test_inspect_of_a_damaged_image_exits_4(cli, tmp_path, offset, message) -> None:
    legacy = tmp_path / "legacy.bin"
    assert cli([*PACK, *PEM_SET, "-o", legacy]).exit_code == 0
    data = bytearray(legacy.read_bytes())
    data[offset] ^= 0x01
    legacy.write_bytes(bytes(data))
    r = cli(["bundle", "inspect", legacy])
    assert r.exit_code == ExitCode.BUNDLE
    assert f"cust_flash {message}" in r.output and "CRC32 mismatch" in r.output


def test_metadata_is_the_c_structs_layout() -> None:
    image = cf.Image(dev_cert=b"d" * 3, ca_cert=None, priv_key=b"k" * 5)
    data = cf.encode(image)
    assert data[0:4] == cf.crc32(b"ddd").to_bytes(4, "little") and data[4:8] == b"\x03\0\0\0"
    assert data[8:16] == bytes(8) and data[20:24] == b"\x05\0\0\0"
    assert data[24:28] == bytes.fromhex("78563412") and data[28:64] == bytes(36)
    assert data[cf.CA_CERT_OFFSET] == 0 and data[cf.CA_CERT_OFFSET + 1] == 0xFF
    ds = cf.Image(b"d", None, ds=cf.Ds(b"c" * 1200, b"i" * 16, 3072, 4))
    meta = cf.encode(ds)[:64]
    assert meta[24:28] == cf.crc32(b"i" * 16).to_bytes(4, "little")
    assert meta[28:33] == b"\x10\x00\x00\x0c\x04" and meta[36:40] == bytes.fromhex("78563412")
    # The variant is where the magic word is, with zeros after it to the metadata's end.
    assert (cf.variant(data), cf.variant(cf.encode(ds))) == ("plain", "ds")
    assert cf.variant(data[:40] + b"\x01" + data[41:]) is None
    with pytest.raises(BundleError, match="no metadata magic word"):
        cf.decode(esc.encode([esc.Entry(esc.TlvType.DEV_CERT, 0, b"x")]))


def _two_roots(tmp_path: Path) -> list[object]:
    return ["--root-ca", FIXTURES / "other-root.pem"]


def _chain(tmp_path: Path) -> list[object]:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(DEVICE.read_bytes() + ROOT.read_bytes() * 3)
    return ["--client-cert", chain]


def _big_ca(tmp_path: Path) -> list[object]:
    ca = self_signed(ec.generate_private_key(ec.SECP256R1()), tmp_path / "big.pem", ca=True,
                      names=120)  # fmt: skip
    assert len(ca.read_bytes()) > cf.CA_CERT_SIZE
    return ["--root-ca", ca]


REFUSALS = {
    "several_root_ca": (lambda p: [*PEM_SET, *_two_roots(p)], "holds one CA certificate"),
    "chain_over_2k": (
        lambda p: ["--tag", "1", "--root-ca", ROOT, "--client-key", KEY, *_chain(p)],
        "its cust_flash slot holds 2048 (a chain",
    ),
    "ca_over_4k": (
        # --force: the device certificate does not chain to this CA (a check error only)
        lambda p: [
            "--tag",
            "1",
            "--client-cert",
            DEVICE,
            "--client-key",
            KEY,
            *_big_ca(p),
            "--force",
        ],
        "its cust_flash slot holds 4096",
    ),
    "no_client_key": (
        lambda p: ["--tag", "1", "--root-ca", ROOT, "--client-cert", DEVICE],
        "needs a client_key",
    ),
    "hmac_encrypted": (
        lambda p: [*PEM_SET, "--esp-key-storage", "hmac-encrypted", "--esp-chip", "esp32c3"],
        "no place for a hmac-encrypted key",
    ),
    "ecdsa_peripheral": (
        lambda p: [
            *PEM_SET,
            "--esp-key-storage",
            "ecdsa-peripheral",
            "--esp-chip",
            "esp32h2",
            "--esp-efuse-key-id",
            "1",
        ],
        "no place for a ecdsa-peripheral key",
    ),
    "ds_on_a_newer_chip": (
        lambda p: [
            *PEM_SET,
            "--esp-key-storage",
            "rsa-ds",
            "--esp-chip",
            "esp32c6",
            "--esp-efuse-key-id",
            "1",
        ],
        "laid out for esp32s2, esp32s3, esp32c3 only",
    ),
    "small_partition": (lambda p: [*PEM_SET, "--partition-size", "0x2000"], "the partition holds"),
    "psk": (lambda p: [*PEM_SET, "--psk-identity", "dev-1"], "no entry for psk_identity"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_preflight_refuses_what_the_layout_cannot_hold(cli, tmp_path, case) -> None:
    options, message = REFUSALS[case]
    out = tmp_path / "x.bin"
    r = cli([*PACK, *options(tmp_path), "-o", out])
    assert r.exit_code == ExitCode.POLICY, r.output
    assert message in " ".join(r.output.split())
    assert len(r.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--esp-layout", "nvs"], "use tlv or cust_flash"),
        (["--esp-entry", f"user_data_1={ROOT}"], "fixed slots only"),
    ],
)
def test_options_the_layout_does_not_take_are_usage_errors(cli, tmp_path, options, message) -> None:
    out = tmp_path / "x.bin"
    cmd = ["bundle", "pack", "--format", "esp-secure-cert", *PEM_SET, "--esp-layout", "cust_flash"]
    r = cli([*cmd, *options, "-o", out])
    assert r.exit_code == ExitCode.USAGE, r.output
    assert message in r.output and not out.exists()
    r = cli(["bundle", "pack", *PEM_SET, "--esp-layout", "cust_flash", "-o", out])
    assert r.exit_code == ExitCode.USAGE and "--format esp-secure-cert" in r.output


def test_encrypted_key_is_stored_decrypted_with_the_flash_encryption_warning(cli, tmp_path) -> None:
    # Espressif's cust_flash path hands --pwd to cryptography as text, which refuses it.
    out = tmp_path / "legacy.bin"
    r = cli([*PACK, "--json", "--tag", "1", "--client-cert", DEVICE,
             "--client-key", FIXTURES / "device-encrypted.key",
             "--key-password-file", FIXTURES / "device-encrypted.pw", "-o", out])  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert "esp_secure_cert.key_decrypted" in [f["code"] for f in report["findings"]]
    assert report["layout"] == "cust_flash"
    key = cf.decode(out.read_bytes()).priv_key
    assert key is not None and b"ENCRYPTED" not in key
    serialization.load_pem_private_key(key.rstrip(b"\0"), None)
