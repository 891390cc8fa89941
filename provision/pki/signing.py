"""Bundle signatures: ECDSA P-256 over a precomputed SHA-256, raw r||s, with a key id.

The digest comes from provision.bundle.format.signing_digest(); this module only signs and
verifies it. Raw r||s (not DER) keeps the trailer a fixed 64 bytes a device can parse.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from provision.errors import InputError, PolicyError
from provision.pki.certs import is_pem, load_certificate
from provision.pki.keys import PublicKeyTypes, public_key_der

KEY_ID_SIZE = 8
SIGNATURE_SIZE = 64
DIGEST_SIZE = 32
_COORD = 32


def key_id(public_key: PublicKeyTypes | ec.EllipticCurvePrivateKey) -> bytes:
    """First 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo."""
    return hashlib.sha256(public_key_der(public_key)).digest()[:KEY_ID_SIZE]


def _require_p256(key: object, what: str) -> None:
    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        raise PolicyError(f"{what} must be an ECDSA P-256 key")


def sign_digest(private_key: ec.EllipticCurvePrivateKey, digest: bytes) -> tuple[bytes, bytes]:
    """Sign a SHA-256 digest; return (key_id, 64-byte r||s)."""
    _require_p256(private_key, "the bundle signing key")
    if len(digest) != DIGEST_SIZE:
        raise InputError(f"digest must be {DIGEST_SIZE} bytes, got {len(digest)}")
    der = private_key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    r, s = decode_dss_signature(der)
    return key_id(private_key.public_key()), r.to_bytes(_COORD, "big") + s.to_bytes(_COORD, "big")


def load_public_key(data: bytes | PublicKeyTypes, source: str = "public key") -> PublicKeyTypes:
    """A public key from a key object, a certificate (PEM/DER) or a SubjectPublicKeyInfo."""
    if not isinstance(data, (bytes, bytearray)):
        return data
    data = bytes(data)
    if b"CERTIFICATE-----" in data or not is_pem(data):
        try:
            return load_certificate(data, source).public_key()
        except InputError:
            if is_pem(data):
                raise
    loader = (
        serialization.load_pem_public_key if is_pem(data) else serialization.load_der_public_key
    )
    try:
        return loader(data)
    except ValueError:
        raise InputError(f"{source}: not a certificate or public key (PEM or DER)") from None


def verify_digest(
    public_key_or_cert_bytes: bytes | PublicKeyTypes,
    digest: bytes,
    key_id_: bytes,
    signature: bytes,
) -> bool:
    """True only if key_id names this key and signature is its valid r||s over digest."""
    public_key = load_public_key(public_key_or_cert_bytes)
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        return False
    if len(signature) != SIGNATURE_SIZE or len(digest) != DIGEST_SIZE:
        return False
    if key_id(public_key) != key_id_:
        return False
    r = int.from_bytes(signature[:_COORD], "big")
    s = int.from_bytes(signature[_COORD:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True
