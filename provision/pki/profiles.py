"""Certificate profiles for mutual TLS: which extensions a root, an intermediate, a server
and a client (device) certificate carry. Chosen to pass cryptography's RFC 5280 / CA/B-style
verifier and `openssl verify -purpose sslserver|sslclient`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from enum import Enum

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from provision.errors import InputError
from provision.pki.keys import PrivateKey, PublicKey


class Profile(str, Enum):
    ROOT_CA = "root_ca"
    INTERMEDIATE_CA = "intermediate_ca"
    SERVER = "server"
    CLIENT = "client"


def signature_hash(signing_key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The digest to sign with: none for Ed25519, SHA-384 for P-384, SHA-256 otherwise."""
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(signing_key, ec.EllipticCurvePrivateKey) and signing_key.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def parse_san(names: Sequence[str]) -> list[x509.GeneralName]:
    """DNS names and IP addresses, as typed on a command line (`host`, `10.0.0.1`, `::1`)."""
    out: list[x509.GeneralName] = []
    for raw in names:
        name = raw.strip()
        if not name:
            raise InputError("empty name in the SAN list")
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        try:
            name.encode("ascii")
        except UnicodeEncodeError:
            raise InputError(
                f"SAN {name!r} is not ASCII: give the IDNA (xn--) form of the name"
            ) from None
        if " " in name or name.startswith(".") or ".." in name:
            raise InputError(f"SAN {name!r} is not a valid DNS name")
        out.append(x509.DNSName(name))
    return out


def _key_usage(*, signer: bool, public_key: PublicKey) -> x509.KeyUsage:
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        # TLS 1.2 RSA key exchange needs keyEncipherment on RSA leaf keys.
        key_encipherment=rsa_key and not signer,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signer,
        crl_sign=signer,
        encipher_only=False,
        decipher_only=False,
    )


def extensions(
    profile: Profile,
    public_key: PublicKey,
    *,
    authority_key_id: x509.AuthorityKeyIdentifier | None,
    path_length: int | None = None,
    san: Sequence[x509.GeneralName] = (),
) -> list[tuple[x509.ExtensionType, bool]]:
    """(extension, critical) pairs for a certificate of `profile` over `public_key`."""
    signer = profile in (Profile.ROOT_CA, Profile.INTERMEDIATE_CA)
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=signer, path_length=path_length if signer else None), True),
        (_key_usage(signer=signer, public_key=public_key), True),
        (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
    ]
    if authority_key_id is not None:
        exts.append((authority_key_id, False))
    if profile is Profile.SERVER:
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False))
    elif profile is Profile.CLIENT:
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False))
    if san:
        # The SAN is critical only when the subject is empty (RFC 5280 4.2.1.6).
        exts.append((x509.SubjectAlternativeName(list(san)), False))
    return exts
