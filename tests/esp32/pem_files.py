"""Keys and certificates written where Espressif's tools read them (PEM)."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID


def key_file(key: Any, path: Path) -> Path:
    """Traditional PEM, mode 0600."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def self_signed(key: Any, path: Path, *, ca: bool = False, names: int = 0) -> Path:
    """A self-signed certificate for `key`; `names` DNS names make it as long as needed."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "esp-dev")])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        dns = [x509.DNSName(f"host-{i:04d}.esp-dev.example") for i in range(names)]
        builder = builder.add_extension(x509.SubjectAlternativeName(dns), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path
