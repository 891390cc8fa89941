"""What a simulated device does for on-device key generation: a P-256 key and a CSR for it.

Used by the simulators (nRF91 %KEYGEN); the key never leaves the simulated device.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provision.errors import InputError


def subject_name(attributes: str | None, default_cn: str) -> x509.Name:
    """ "C=NO,O=Acme,CN=dev-1" (the %KEYGEN attribute syntax) → x509.Name; CN defaults."""
    if not attributes:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, default_cn)])
    try:
        name = x509.Name.from_rfc4514_string(attributes)
    except ValueError:
        raise InputError(
            "keygen attributes are not a distinguished name (C=..,O=..,CN=..)"
        ) from None
    if not name.get_attributes_for_oid(NameOID.COMMON_NAME):
        name = x509.Name([*name, x509.NameAttribute(NameOID.COMMON_NAME, default_cn)])
    return name


def generate_key_and_csr(attributes: str | None, default_cn: str = "device") -> tuple[bytes, bytes]:
    """A new EC P-256 key (PKCS#8 PEM) and a CSR for it (DER) signed with ECDSA-SHA256."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_name(attributes, default_cn))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, csr.public_bytes(serialization.Encoding.DER)
