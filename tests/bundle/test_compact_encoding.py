"""`--encoding compact` (the default): DER wherever converting loses nothing, else as given.

Also the PEM armour helper it relies on (provision.pki.pem), and the other encodings' handling
of encrypted keys, which convert by armour alone (no re-encryption, same bytes every run).
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from provision import packing as bundle_io
from provision.bundle import format as fmt
from provision.bundle.model import Encoding, SlotFlags, SlotType
from provision.bundle.spec import PackSources, SecretSource, TagSources
from provision.errors import ExitCode, InputError
from provision.pki.keys import load_private_key, public_key_der
from provision.pki.pem import PemBlock, pem_armor, pem_blocks, private_key_block

PASSWORD = b"test-only-password"


def one_tag(encoding: str | None = None, **items: object) -> PackSources:
    extra = {} if encoding is None else {"encoding": encoding}
    return PackSources((TagSources(42, **items),), **extra)


def by_type(sources: PackSources) -> dict[SlotType, object]:
    return {s.type: s for s in bundle_io.read_credentials(sources)}


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


# --- the armour helper ----------------------------------------------------------------------


def test_armour_round_trip_is_byte_exact(files) -> None:
    pem = files.device_encrypted_dot_key.read_bytes()
    [block] = pem_blocks(pem, "k")
    assert block.label == "ENCRYPTED PRIVATE KEY" and not block.has_headers
    # Same 64-column layout as OpenSSL/cryptography: armouring again gives the file back.
    assert pem_armor(block.label, block.der) == pem
    assert pem_blocks(files.root_ca_dot_pem.read_bytes(), "r")[0].der == (
        files.root_ca_dot_der.read_bytes()
    )


def test_armour_reading_rejects_damage_and_flags_headers(files) -> None:
    pem = files.device_dot_key.read_bytes()
    damaged = pem.replace(pem.splitlines()[1], b"!!!!" + pem.splitlines()[1][4:])
    with pytest.raises(InputError, match=r"^k: damaged PEM block PRIVATE KEY \(bad base64\)$"):
        pem_blocks(damaged, "k")
    legacy = (
        b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\n"
        b"AAAA\n-----END EC PRIVATE KEY-----\n"
    )
    assert pem_blocks(legacy, "k") == [PemBlock("EC PRIVATE KEY", b"", has_headers=True)]
    # Two key blocks: no single answer.
    assert private_key_block(pem + pem, "k") is None
    assert "MIG" not in repr(pem_blocks(pem, "k")[0])  # the DER never shows in a repr


# --- compact --------------------------------------------------------------------------------


def test_compact_is_the_default_and_gives_the_der_inside_the_pem(files) -> None:
    assert PackSources(()).encoding == "compact"
    slots = by_type(
        one_tag(
            root_ca=(files.root_ca_dot_pem,),
            client_cert=files.device_dot_pem,
            client_key=files.device_dot_key,
        )
    )
    assert {t: s.encoding for t, s in slots.items()} == dict.fromkeys(slots, Encoding.DER)
    assert slots[SlotType.ROOT_CA].data == files.root_ca_dot_der.read_bytes()
    assert slots[SlotType.CLIENT_CERT].data == files.device_dot_der.read_bytes()
    assert slots[SlotType.CLIENT_KEY].data == files.device_dot_key_dot_der.read_bytes()


def test_compact_keeps_der_inputs_byte_for_byte(files) -> None:
    slots = by_type(
        one_tag(
            root_ca=(files.root_ca_dot_der,),
            client_cert=files.device_dot_der,
            client_key=files.device_dot_key_dot_der,
        )
    )
    assert slots[SlotType.CLIENT_KEY].data == files.device_dot_key_dot_der.read_bytes()
    assert slots[SlotType.ROOT_CA].data == files.root_ca_dot_der.read_bytes()


def test_compact_keeps_a_client_cert_chain_as_pem(files, tmp_path: Path) -> None:
    chain = tmp_path / "chain.pem"
    chain.write_bytes(files.device_dot_pem.read_bytes() + files.root_ca_dot_pem.read_bytes())
    slots = by_type(one_tag(root_ca=(files.root_ca_dot_pem,), client_cert=chain))
    assert slots[SlotType.CLIENT_CERT].encoding is Encoding.PEM
    assert slots[SlotType.CLIENT_CERT].data == chain.read_bytes()
    assert slots[SlotType.ROOT_CA].encoding is Encoding.DER  # roots are one record each
    with pytest.raises(InputError, match="use --encoding pem or compact"):
        by_type(one_tag("der", client_cert=chain))


def test_compact_sec1_key_keeps_its_own_der(files, tmp_path: Path) -> None:
    """`openssl ecparam -genkey` writes EC PARAMETERS then a SEC1 key: the key's DER is kept
    as it is (still SEC1), and it is the same key."""
    key = tmp_path / "sec1.key"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-out", str(key))
    assert b"BEGIN EC PARAMETERS" in key.read_bytes()
    slot = by_type(one_tag(client_key=key))[SlotType.CLIENT_KEY]
    assert slot.encoding is Encoding.DER and slot.flags == SlotFlags.NONE
    [block] = [b for b in pem_blocks(key.read_bytes(), "k") if b.label == "EC PRIVATE KEY"]
    assert slot.data == block.der
    original = load_private_key(key.read_bytes(), None, "k")
    assert public_key_der(load_private_key(slot.data, None, "d")) == public_key_der(original)


@pytest.mark.parametrize("encoding", ["compact", "der"])
def test_encrypted_pkcs8_pem_becomes_der_by_armour_alone(files, encoding: str) -> None:
    sources = one_tag(
        encoding,
        client_key=files.device_encrypted_dot_key,
        key_password=SecretSource(file=files.device_encrypted_dot_pw),
    )
    first = bundle_io.read_credentials(sources)
    key = first.get(42, SlotType.CLIENT_KEY)
    assert key is not None and key.encoding is Encoding.DER and key.flags == SlotFlags.ENCRYPTED
    pem = files.device_encrypted_dot_key.read_bytes()
    assert pem_armor("ENCRYPTED PRIVATE KEY", key.data) == pem  # lossless: armour gives it back
    body = b"".join(pem.splitlines()[1:-1])
    assert key.data == base64.b64decode(body)
    load_private_key(key.data, PASSWORD, "der")  # still opens with its password
    # No re-encryption, so no new salt: the same bundle every run.
    assert fmt.encode(bundle_io.read_credentials(sources)) == fmt.encode(first)


def test_encrypted_pkcs8_der_becomes_pem_by_armour(files, tmp_path: Path) -> None:
    der = tmp_path / "enc.der"
    [block] = pem_blocks(files.device_encrypted_dot_key.read_bytes(), "k")
    der.write_bytes(block.der)
    pw = SecretSource(file=files.device_encrypted_dot_pw)
    pem = by_type(one_tag("pem", client_key=der, key_password=pw))[SlotType.CLIENT_KEY]
    assert pem.encoding is Encoding.PEM
    assert pem.data == files.device_encrypted_dot_key.read_bytes()
    for encoding in ("compact", "keep", "der"):
        same = by_type(one_tag(encoding, client_key=der, key_password=pw))[SlotType.CLIENT_KEY]
        assert (same.encoding, same.data) == (Encoding.DER, block.der)


@pytest.fixture
def legacy_key(files, tmp_path: Path) -> Path:
    """A key under OpenSSL's legacy PEM encryption (Proc-Type: 4,ENCRYPTED), by openssl."""
    key = tmp_path / "legacy.key"
    openssl(
        "pkey", "-in", str(files.device_dot_key), "-traditional", "-aes256",
        "-passout", f"pass:{PASSWORD.decode()}", "-out", str(key),
    )  # fmt: skip
    assert b"Proc-Type: 4,ENCRYPTED" in key.read_bytes()
    return key


def test_legacy_encrypted_pem_is_kept_under_compact(files, legacy_key: Path) -> None:
    pw = SecretSource(file=files.device_encrypted_dot_pw)
    slot = by_type(one_tag(client_key=legacy_key, key_password=pw))[SlotType.CLIENT_KEY]
    assert slot.encoding is Encoding.PEM and slot.flags == SlotFlags.ENCRYPTED
    assert slot.data == legacy_key.read_bytes()


def test_legacy_encrypted_pem_under_der_is_a_clear_error(run, files, legacy_key, tmp_path):
    out = tmp_path / "b.prvb"
    result = run(
        "bundle", "pack", "--tag", 42, "--client-cert", files.device_dot_pem,
        "--client-key", legacy_key, "--key-password-file", files.device_encrypted_dot_pw,
        "--encoding", "der", "-o", out,
    )  # fmt: skip
    assert result.exit_code == ExitCode.INPUT, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {legacy_key}: a legacy OpenSSL-encrypted PEM key")
    assert "--encoding compact or keep" in line
    assert not out.exists()


def test_cli_default_and_explicit_encodings(run, files, tmp_path: Path) -> None:
    def pack(*extra: object) -> list[Encoding]:
        out = tmp_path / f"b{len(list(tmp_path.iterdir()))}.prvb"
        result = run(
            "bundle", "pack", "--tag", 42, "--root-ca", files.root_ca_dot_pem,
            "--client-cert", files.device_dot_pem, "--client-key", files.device_dot_key,
            "-o", out, *extra,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        return [s.encoding for s in fmt.decode(out.read_bytes()).credentials]

    assert pack() == [Encoding.DER] * 3
    assert pack("--encoding", "compact") == [Encoding.DER] * 3
    assert pack("--encoding", "keep") == [Encoding.PEM] * 3
    assert pack("--encoding", "pem") == [Encoding.PEM] * 3
    spec = tmp_path / "keep.toml"
    spec.write_text(
        f'encoding = "keep"\n[sec_tag.1]\nroot_ca = "{files.root_ca_dot_pem}"\n', "utf-8"
    )
    out = tmp_path / "spec.prvb"
    assert run("bundle", "pack", "--spec", spec, "-o", out).exit_code == 0
    assert [s.encoding for s in fmt.decode(out.read_bytes()).credentials] == [Encoding.PEM]
    assert run("bundle", "pack", "--spec", spec, "--encoding", "compact", "-o", out,
               "--force").exit_code == 0  # fmt: skip
    assert [s.encoding for s in fmt.decode(out.read_bytes()).credentials] == [Encoding.DER]
