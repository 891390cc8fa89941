"""Certificate signing requests: create one for a key, load one from a device or a team.

Older nRF91 modem firmware writes `ecdsa-with-SHA256` with explicit NULL parameters in the
CSR's outer signatureAlgorithm, which RFC 5758 forbids and cryptography's strict parser
rejects. That field is outside the signed CertificationRequestInfo, so dropping the NULL
(with asn1crypto, which keeps the signed bytes as they were) changes nothing the signature
covers: the signature is still verified afterwards, by cryptography, before anything is signed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from provision.errors import InputError
from provision.pki.keys import PrivateKey
from provision.pki.profiles import parse_san, signature_hash

_ECDSA_ALGORITHMS = ("sha1_ecdsa", "sha224_ecdsa", "sha256_ecdsa", "sha384_ecdsa", "sha512_ecdsa")


@dataclass(frozen=True)
class LoadedCSR:
    csr: x509.CertificateSigningRequest
    # True when the NULL-parameters quirk of older modem firmware was repaired.
    repaired_null_parameters: bool = False


def create_csr(
    key: PrivateKey,
    common_name: str,
    *,
    san: Sequence[str] = (),
    organization: str | None = None,
) -> x509.CertificateSigningRequest:
    from cryptography.x509.oid import NameOID

    from provision.pki.authority import name_attribute

    attrs = []
    if organization:
        attrs.append(name_attribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(name_attribute(NameOID.COMMON_NAME, common_name))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(parse_san(san)), False)
    return builder.sign(key, signature_hash(key))


def csr_bytes(csr: x509.CertificateSigningRequest, encoding: str = "pem") -> bytes:
    enc = serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER
    return csr.public_bytes(enc)


def _der_of(data: bytes, source: str) -> bytes:
    if b"-----BEGIN" not in data:
        return data
    try:
        from asn1crypto import pem
    except ImportError:  # pragma: no cover - asn1crypto is a dependency
        raise InputError(f"{source}: cannot read the CSR") from None
    try:
        _, _, der = pem.unarmor(data.strip())
    except ValueError:
        raise InputError(f"{source}: damaged PEM (bad armor or base64)") from None
    return der


def _drop_null_parameters(data: bytes, source: str) -> bytes | None:
    """DER of the CSR with the NULL removed, or None when that is not the problem."""
    from asn1crypto import csr as asn1_csr

    try:
        req = asn1_csr.CertificationRequest.load(_der_of(data, source))
        algorithm = req["signature_algorithm"]
        if algorithm["algorithm"].native not in _ECDSA_ALGORITHMS:
            return None
        if algorithm["parameters"].dump() != b"\x05\x00":
            return None
        fixed = asn1_csr.CertificationRequest(
            {
                "certification_request_info": req["certification_request_info"],
                "signature_algorithm": {"algorithm": algorithm["algorithm"].native},
                "signature": req["signature"],
            }
        )
        return fixed.dump()
    except (ValueError, TypeError, KeyError):
        return None


_KEYGEN = re.compile(rb'^(?:%KEYGEN:\s*)?"?([A-Za-z0-9_-]+)(?:\.[A-Za-z0-9_-]+)?"?$')


def _from_keygen_text(data: bytes) -> bytes | None:
    """DER from an nRF91 `%KEYGEN` reply (base64url without padding, then `.` and the
    COSE attestation), as users paste it; None if data is not such text."""
    m = _KEYGEN.match(data.strip())
    if m is None:
        return None
    text = m.group(1)
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except ValueError:
        return None


def load_csr(data: bytes, source: str) -> LoadedCSR:
    """A CSR from PEM, DER or a pasted `%KEYGEN` reply; InputError naming `source` if none.

    The CSR's signature is *not* judged here: policy (authority.sign_request) does that.
    """
    if not data.strip():
        raise InputError(f"{source}: empty file, expected a PEM or DER CSR")
    keygen = _from_keygen_text(data)
    if keygen is not None:
        data = keygen
    is_pem = b"-----BEGIN" in data
    if is_pem and b"CERTIFICATE REQUEST-----" not in data:
        raise InputError(f"{source}: no CERTIFICATE REQUEST block in PEM")
    if is_pem and b"-----END" not in data:
        raise InputError(f"{source}: truncated PEM (BEGIN line without END line)")
    try:
        if is_pem:
            return LoadedCSR(x509.load_pem_x509_csr(data))
        return LoadedCSR(x509.load_der_x509_csr(data))
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is no ValueError
        pass
    repaired = _drop_null_parameters(data, source)
    if repaired is not None:
        try:
            return LoadedCSR(x509.load_der_x509_csr(repaired), repaired_null_parameters=True)
        except (ValueError, x509.InvalidVersion):
            raise InputError(
                f"{source}: CSR has NULL parameters in its ECDSA algorithm identifier "
                "(older modem firmware) and is malformed beyond that"
            ) from None
    raise InputError(f"{source}: not a PEM or DER certificate signing request")
