"""ES256 (ECDSA P-256 with SHA-256) as COSE carries it: a raw 64-byte r || s signature.

COSE (RFC 9053 section 2.1) does not use the DER `Ecdsa-Sig-Value` of X.509; the nRF91 modem's
%KEYGEN and %ATTESTTOKEN COSE_Sign1 signatures are this 64-byte form.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from provision.errors import InputError

SIGNATURE_SIZE = 64


def generate_pem() -> bytes:
    """A new P-256 private key as unencrypted PKCS#8 PEM (for a simulated device's flash)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(private_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sign(private_pem: bytes, data: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InputError("an ES256 signing key must be EC P-256")
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(public_pem_or_der: bytes, data: bytes, signature: bytes) -> bool:
    """True if `signature` (r || s) is a valid ES256 signature of `data` by the key."""
    try:
        if public_pem_or_der.lstrip().startswith(b"-----"):
            key = serialization.load_pem_public_key(public_pem_or_der)
        else:
            key = serialization.load_der_public_key(public_pem_or_der)
    except ValueError:
        raise InputError("not a public key (PEM or DER SubjectPublicKeyInfo)") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != SIGNATURE_SIZE:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
