"""Certificates as bytes: load (PEM, several PEM, or DER), describe, convert."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from provision.errors import InputError
from provision.pki.keys import describe_key

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_PEM_END = re.compile(rb"-----END ([A-Z0-9 ]+)-----")
_CERT_LABELS = (b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE")


@dataclass(frozen=True)
class CertSummary:
    """What a person (or a table) wants to know about one certificate."""

    subject: str  # RFC 4514
    issuer: str
    serial: int
    not_before: datetime  # timezone-aware, UTC
    not_after: datetime
    sha256_fingerprint: str  # lowercase hex of SHA-256 over the DER
    is_ca: bool
    common_name: str | None = None
    key_type: str = ""

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["serial"] = format(self.serial, "x")
        data["not_before"] = self.not_before.isoformat()
        data["not_after"] = self.not_after.isoformat()
        return data


def is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in `data`: PEM with one or more blocks, or one DER certificate.

    Raises InputError naming `source` for empty input, PEM without a certificate block,
    truncated PEM and DER that does not parse.
    """
    if not data.strip():
        raise InputError(f"{source}: empty file, expected a PEM or DER certificate")
    if is_pem(data):
        labels = _PEM_BLOCK.findall(data)
        ends = _PEM_END.findall(data)
        cert_blocks = [label for label in labels if label in _CERT_LABELS]
        if not cert_blocks:
            found = labels[0].decode(errors="replace") if labels else "nothing"
            raise InputError(f"{source}: no CERTIFICATE block in PEM (found {found})")
        if len(ends) < len(labels):
            raise InputError(f"{source}: truncated PEM (a BEGIN line has no matching END line)")
        try:
            certs = x509.load_pem_x509_certificates(data)
        except (ValueError, x509.InvalidVersion):
            raise InputError(
                f"{source}: damaged PEM certificate (bad base64 or DER inside)"
            ) from None
        return _with_usable_keys(certs, source)
    try:
        certs = [x509.load_der_x509_certificate(data)]
    except (ValueError, x509.InvalidVersion):
        raise InputError(f"{source}: not a PEM or DER certificate") from None
    return _with_usable_keys(certs, source)


def _with_usable_keys(certs: list[x509.Certificate], source: str) -> list[x509.Certificate]:
    """cryptography parses a certificate's public key only when asked: a damaged key inside
    a well-formed certificate raised ValueError later, anywhere (found by fuzzing
    `bundle verify --pubkey`). Asked here once, every certificate loaded is usable."""
    for cert in certs:
        try:
            cert.public_key()
        except (ValueError, UnsupportedAlgorithm):
            raise InputError(
                f"{source}: a certificate's public key is damaged or of an unknown type"
            ) from None
    return certs


def load_certificate(data: bytes, source: str) -> x509.Certificate:
    """The first certificate in `data` (see load_certificates)."""
    return load_certificates(data, source)[0]


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bool(bc.ca)


def common_name(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


def summarize(cert: x509.Certificate) -> CertSummary:
    try:
        key_label = describe_key(cert.public_key())
    except Exception:  # an unknown algorithm must not stop a summary
        key_label = "unknown"
    return CertSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=cert.serial_number,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sha256_fingerprint=fingerprint(cert),
        is_ca=is_ca(cert),
        common_name=common_name(cert.subject),
        key_type=key_label,
    )


def describe_certificate(data: bytes, source: str = "certificate") -> CertSummary:
    """Summary of the first certificate in PEM or DER `data`."""
    return summarize(load_certificate(data, source))


def to_pem(data: bytes, source: str = "certificate") -> bytes:
    """PEM of every certificate in `data` (LF line endings, one block after another)."""
    return b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in load_certificates(data, source)
    )


def to_der(data: bytes, source: str = "certificate") -> bytes:
    """DER of the single certificate in `data`; a PEM chain must be split first."""
    certs = load_certificates(data, source)
    if len(certs) != 1:
        raise InputError(f"{source}: DER holds one certificate, this input has {len(certs)}")
    return certs[0].public_bytes(serialization.Encoding.DER)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)
