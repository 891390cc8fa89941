"""Private keys: generate, load (with or without a password), serialize, write 0600.

Messages name the source and the problem, never the key bytes or the password.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from provision.errors import InputError
from provision.pki.files import write_private_key as _write_private_key

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class KeyType(str, Enum):
    """Key types a certificate or CSR may carry. P-256 is what nRF91 and most MCUs do in HW."""

    P256 = "p256"
    P384 = "p384"
    RSA2048 = "rsa2048"
    RSA3072 = "rsa3072"
    RSA4096 = "rsa4096"
    # Few TLS stacks on devices (mbedTLS, the nRF91 modem) accept Ed25519 certificates, so it
    # is only offered behind an explicit flag.
    ED25519 = "ed25519"

    @property
    def label(self) -> str:
        return self.value


DEFAULT_KEY_TYPE = KeyType.P256
_CURVES: dict[KeyType, ec.EllipticCurve] = {
    KeyType.P256: ec.SECP256R1(),
    KeyType.P384: ec.SECP384R1(),
}
_RSA_BITS = {KeyType.RSA2048: 2048, KeyType.RSA3072: 3072, KeyType.RSA4096: 4096}


def generate_key(key_type: KeyType | str = DEFAULT_KEY_TYPE) -> PrivateKey:
    key_type = KeyType(key_type)
    curve = _CURVES.get(key_type)
    if curve is not None:
        return ec.generate_private_key(curve)
    if key_type in _RSA_BITS:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS[key_type])
    return ed25519.Ed25519PrivateKey.generate()


def key_type_of(key: PrivateKey | PublicKeyTypes) -> KeyType | None:
    """The KeyType of a private or public key, or None for anything we do not issue for."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return {"secp256r1": KeyType.P256, "secp384r1": KeyType.P384}.get(key.curve.name)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return {2048: KeyType.RSA2048, 3072: KeyType.RSA3072, 4096: KeyType.RSA4096}.get(
            key.key_size
        )
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return KeyType.ED25519
    return None


def describe_key(key: PrivateKey | PublicKeyTypes) -> str:
    kt = key_type_of(key)
    if kt is not None:
        return kt.label
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"ec-{key.curve.name}"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"rsa{key.key_size}"
    return type(key).__name__


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data[:4096]


def _der_first_inner_tag(data: bytes) -> int | None:
    """Tag of the first element inside a DER SEQUENCE, or None when data is not one."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    offset = 2 if first < 0x80 else 2 + (first & 0x7F)
    return data[offset] if offset < len(data) else None


def key_is_encrypted(data: bytes) -> bool:
    """True for PKCS#8 EncryptedPrivateKeyInfo (PEM or DER) and legacy encrypted PEM."""
    if _is_pem(data):
        return b"BEGIN ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data
    # EncryptedPrivateKeyInfo starts with an AlgorithmIdentifier SEQUENCE; every plain key
    # form (PKCS#8, SEC1, PKCS#1) starts with an INTEGER version.
    return _der_first_inner_tag(data) == 0x30


def load_private_key(data: bytes, password: bytes | None, source: str) -> PrivateKey:
    """Load a PEM or DER private key; raise InputError (with a stable `code`) otherwise.

    A password given for a plain key is ignored: the key is what it is.
    """
    encrypted = key_is_encrypted(data)
    if encrypted and not password:
        raise InputError(
            f"{source}: private key is encrypted and no password was given",
            code="key.password_missing",
        )
    loader = (
        serialization.load_pem_private_key if _is_pem(data) else serialization.load_der_private_key
    )
    try:
        key = loader(data, password if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise InputError(
                f"{source}: wrong password for the encrypted private key (or the key is damaged)",
                code="key.password_wrong",
            ) from None
        raise InputError(
            f"{source}: not a private key (expected PEM or DER, PKCS#8, SEC1 or PKCS#1)",
            code="key.invalid",
        ) from None
    if not isinstance(
        key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)
    ):
        raise InputError(
            f"{source}: unsupported private key type {type(key).__name__}", code="key.unsupported"
        )
    return key


def serialize_private_key(
    key: PrivateKey,
    *,
    encoding: Literal["pem", "der"] = "pem",
    password: bytes | None = None,
    traditional: bool = False,
) -> bytes:
    """PKCS#8, encrypted with the best available algorithm when a password is given;
    `traditional`: SEC1 / PKCS#1 ("BEGIN EC/RSA PRIVATE KEY"), unencrypted, as Espressif's
    esp_secure_cert tool stores keys."""
    if encoding not in ("pem", "der"):
        raise InputError(f"unknown key encoding {encoding!r} (pem or der)")
    enc = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
    algorithm: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    if traditional:
        return key.private_bytes(
            enc, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    return key.private_bytes(enc, serialization.PrivateFormat.PKCS8, algorithm)


def public_key_der(key: PrivateKey | PublicKeyTypes) -> bytes:
    """DER SubjectPublicKeyInfo of a key (private keys give their public half)."""
    pub = key.public_key() if isinstance(key, PrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_private_key(path: Path | str, data: bytes, force: bool) -> None:
    """Write key bytes atomically, mode 0600; OverwriteError if the file exists and not force."""
    _write_private_key(path, data, force)
