from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from provision.errors import InputError, OverwriteError
from provision.pki.keys import (
    KeyType,
    generate_key,
    key_is_encrypted,
    key_type_of,
    load_private_key,
    serialize_private_key,
    write_private_key,
)

PASSWORD = b"correct horse"


@pytest.fixture(scope="module")
def p256():
    return generate_key()


def test_default_key_is_p256(p256) -> None:
    assert isinstance(p256, ec.EllipticCurvePrivateKey)
    assert key_type_of(p256) is KeyType.P256


@pytest.mark.parametrize(
    ("key_type", "cls"),
    [
        (KeyType.P384, ec.EllipticCurvePrivateKey),
        (KeyType.RSA2048, rsa.RSAPrivateKey),
        (KeyType.ED25519, ed25519.Ed25519PrivateKey),
    ],
)
def test_generate_each_type(key_type: KeyType, cls: type) -> None:
    key = generate_key(key_type)
    assert isinstance(key, cls)
    assert key_type_of(key) is key_type


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_round_trip_plain_and_encrypted(p256, encoding: str) -> None:
    plain = serialize_private_key(p256, encoding=encoding)
    enc = serialize_private_key(p256, encoding=encoding, password=PASSWORD)
    assert not key_is_encrypted(plain)
    assert key_is_encrypted(enc)
    assert PASSWORD not in enc
    for data, pw in ((plain, None), (enc, PASSWORD)):
        loaded = load_private_key(data, pw, "k")
        assert loaded.private_numbers() == p256.private_numbers()


def test_pem_encrypted_is_pkcs8(p256) -> None:
    enc = serialize_private_key(p256, password=PASSWORD)
    assert enc.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")


def test_wrong_password(p256) -> None:
    enc = serialize_private_key(p256, password=PASSWORD)
    with pytest.raises(InputError) as err:
        load_private_key(enc, b"nope", "device.key")
    assert err.value.code == "key.password_wrong"
    assert "device.key" in err.value.message
    assert "nope" not in err.value.message and "\n" not in err.value.message


def test_password_missing(p256) -> None:
    enc = serialize_private_key(p256, encoding="der", password=PASSWORD)
    with pytest.raises(InputError) as err:
        load_private_key(enc, None, "device.der")
    assert err.value.code == "key.password_missing"


@pytest.mark.parametrize(
    "data", [b"hello", b"\x30\x03\x02\x01\x00", b"-----BEGIN PRIVATE KEY-----\nAAAA\n"]
)
def test_not_a_key(data: bytes) -> None:
    with pytest.raises(InputError) as err:
        load_private_key(data, None, "junk.bin")
    assert err.value.code == "key.invalid"
    assert err.value.message.startswith("junk.bin: ")


def test_write_private_key_0600_and_no_overwrite(tmp_path, p256) -> None:
    path = tmp_path / "k.pem"
    data = serialize_private_key(p256)
    write_private_key(path, data, force=False)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_bytes() == data
    with pytest.raises(OverwriteError):
        write_private_key(path, b"other", force=False)
    assert path.read_bytes() == data
    write_private_key(path, b"other", force=True)
    assert path.read_bytes() == b"other"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.pem"]


def test_write_into_missing_directory_creates_it(tmp_path) -> None:
    write_private_key(tmp_path / "no" / "k.pem", b"x", force=False)
    assert stat.S_IMODE(os.stat(tmp_path / "no" / "k.pem").st_mode) == 0o600
