"""The cryptography of client keys tied to an ESP chip's eFuse keys (the pki package owns
`cryptography`): what esp_secure_cert_mgr and the chip's HMAC, DS and ECDSA peripherals compute
from a 32-byte eFuse key. provision.dialects.esp32_keys says where these go in the
esp_secure_cert partition and cites the sources.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from provision.pki.keys import PrivateKey

HMAC_AES_MESSAGE = b"\xff" * 32
HMAC_IV_MESSAGE = struct.pack("<8I", *[0xABCDABCD] * 8)
DERIVATION_ITERATIONS = 2048
DS_PADDING = b"\x08" * 8


def key_kind(key: Any) -> tuple[str, int]:
    """("rsa", bits), ("ec", curve bits) or ("other", 0)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ec", key.curve.key_size
    return "other", 0


def _hmac(efuse_key: bytes, message: bytes) -> bytes:
    return hmac.new(efuse_key, message, hashlib.sha256).digest()


def _gcm(efuse_key: bytes) -> tuple[AESGCM, bytes]:
    iv = _hmac(efuse_key, HMAC_IV_MESSAGE)[:16]
    return AESGCM(_hmac(efuse_key, HMAC_AES_MESSAGE)), iv


def hmac_encrypt(data: bytes, efuse_key: bytes) -> bytes:
    """AES-256-GCM ciphertext and tag, key and IV derived from the eFuse key by HMAC."""
    aes, iv = _gcm(efuse_key)
    return aes.encrypt(iv, data, None)


def hmac_decrypt(data: bytes, efuse_key: bytes) -> bytes:
    aes, iv = _gcm(efuse_key)
    return aes.decrypt(iv, data, None)


def derived_key(efuse_key: bytes, salt: bytes) -> PrivateKey:
    """The P-256 key a chip with this HMAC_UP eFuse key derives from `salt` (PBKDF2)."""
    kdf = PBKDF2HMAC(hashes.SHA256(), 32, salt, DERIVATION_ITERATIONS)
    scalar = int.from_bytes(kdf.derive(efuse_key), "big")
    return ec.derive_private_key(scalar, ec.SECP256R1())  # ValueError if out of range


def _le(number: int, size: int) -> bytes:
    return number.to_bytes(size, "little")


def ds_ciphertext(key: Any, efuse_key: bytes, max_bits: int, iv: bytes) -> tuple[int, bytes]:
    """(RSA length field, ciphertext) of an RSA key for a DS peripheral whose largest size is
    `max_bits`: AES-256-CBC under HMAC(eFuse key, 32 x 0xFF) of Y || M || Rb || MD || M' || L
    || 8 x 0x08."""
    bits = key.key_size
    size = max_bits // 8
    n = key.public_key().public_numbers().n
    y = key.private_numbers().d
    rb = (1 << (2 * bits)) % n
    m_prime = -pow(n, -1, 1 << 32) & 0xFFFFFFFF
    length = bits // 32 - 1
    numbers = _le(y, size) + _le(n, size) + _le(rb, size)
    tail = struct.pack("<II", m_prime, length)
    md = hashlib.sha256(numbers + tail + iv).digest()
    cipher = Cipher(algorithms.AES(_hmac(efuse_key, HMAC_AES_MESSAGE)), modes.CBC(iv))
    enc = cipher.encryptor()
    return length, enc.update(numbers + md + tail + DS_PADDING) + enc.finalize()
