"""Certificate profiles for mutual TLS: which extensions a root, an intermediate, a server
and a client (device) certificate carry. Chosen to pass cryptography's RFC 5280 / CA/B-style
verifier and `openssl verify -purpose sslserver|sslclient`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from enum import Enum
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from provision.errors import InputError
from provision.pki.keys import PrivateKey, PublicKey


class Profile(str, Enum):
    ROOT_CA = "root_ca"
    INTERMEDIATE_CA = "intermediate_ca"
    SERVER = "server"
    CLIENT = "client"


def signature_hash(signing_key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
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


def _key_usage(*, signer: bool, rsa_key: bool) -> x509.KeyUsage:
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


def subject_key_identifier(public_key: PublicKey) -> x509.SubjectKeyIdentifier:
    """RFC 5280 method 1 (SHA-1 of the subjectPublicKey bits); fast path for EC keys."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return x509.SubjectKeyIdentifier(hashlib.sha1(point, usedforsecurity=False).digest())
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


_SKI_OID = ExtensionOID.SUBJECT_KEY_IDENTIFIER
# DER header of the SKI value: an OCTET STRING of the 20-byte SHA-1 (RFC 5280 4.2.1.2).
_SKI_DER_PREFIX = x509.SubjectKeyIdentifier(bytes(20)).public_bytes()[:2]


def _ski_extension(public_key: PublicKey) -> x509.Extension[x509.ExtensionType]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        der = _SKI_DER_PREFIX + hashlib.sha1(point, usedforsecurity=False).digest()
    else:
        der = x509.SubjectKeyIdentifier.from_public_key(public_key).public_bytes()
    return x509.Extension(_SKI_OID, False, x509.UnrecognizedExtension(_SKI_OID, der))


@lru_cache(maxsize=64)
def fixed_extensions(
    profile: Profile,
    rsa_key: bool,
    path_length: int | None,
    authority_key_id: x509.AuthorityKeyIdentifier | None,
) -> tuple[x509.Extension[x509.ExtensionType], ...]:
    """The extensions that do not depend on the subject's key or names (cached: an
    Authority issuing thousands of certificates builds them once)."""
    signer = profile in (Profile.ROOT_CA, Profile.INTERMEDIATE_CA)
    exts: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=signer, path_length=path_length if signer else None), True),
        (_key_usage(signer=signer, rsa_key=rsa_key), True),
    ]
    if authority_key_id is not None:
        exts.append((authority_key_id, False))
    if profile is Profile.SERVER:
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False))
    elif profile is Profile.CLIENT:
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False))
    # Encoded once by cryptography itself and carried as bytes: the signer then copies them
    # instead of re-dispatching on each extension type for every certificate.
    return tuple(
        x509.Extension(e.oid, critical, x509.UnrecognizedExtension(e.oid, e.public_bytes()))
        for e, critical in exts
    )


def extensions(
    profile: Profile,
    public_key: PublicKey,
    *,
    authority_key_id: x509.AuthorityKeyIdentifier | None,
    path_length: int | None = None,
    san: Sequence[x509.GeneralName] = (),
) -> list[x509.Extension[x509.ExtensionType]]:
    """All extensions for a certificate of `profile` over `public_key`."""
    rsa_key = isinstance(public_key, rsa.RSAPublicKey)
    out = list(fixed_extensions(profile, rsa_key, path_length, authority_key_id))
    out.append(_ski_extension(public_key))
    if san:
        # Critical only when the subject is empty (RFC 5280 4.2.1.6); we always set a CN.
        value = x509.SubjectAlternativeName(list(san))
        out.append(x509.Extension(value.oid, False, value))
    return out
