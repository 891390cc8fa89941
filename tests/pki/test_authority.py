from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision.errors import InputError, PolicyError
from provision.pki.authority import create_root_ca
from provision.pki.keys import KeyType, key_type_of


def ext(cert: x509.Certificate, cls: type):
    return cert.extensions.get_extension_for_class(cls)


def test_root_profile(root) -> None:
    cert = root.cert
    assert cert.issuer == cert.subject
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length is None
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    cert.verify_directly_issued_by(cert)


def test_intermediate_path_length_and_aki(root, intermediate) -> None:
    cert = intermediate.cert
    assert ext(cert, x509.BasicConstraints).value.path_length == 0
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(root.cert, x509.SubjectKeyIdentifier).value.digest
    cert.verify_directly_issued_by(root.cert)
    assert intermediate.chain == (intermediate.cert, root.cert)


def test_client_profile(intermediate) -> None:
    key, cert = intermediate.issue_client("imei-350457790000001", days=90)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "imei-350457790000001"
    )
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(cert, x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == (
        ext(intermediate.cert, x509.SubjectKeyIdentifier).value.digest
    )
    assert ext(cert, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    )
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=90) <= life <= timedelta(days=90, minutes=6)
    cert.verify_directly_issued_by(intermediate.cert)


def test_serials_random_positive_at_most_20_bytes(root) -> None:
    serials = {root.issue_client(f"d{i}")[1].serial_number for i in range(20)}
    assert len(serials) == 20
    assert all(0 < s < 2**159 for s in serials)


def test_server_profile_san(root) -> None:
    _, cert = root.issue_server(["mqtt.example.com", "10.0.0.7", "::1"])
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mqtt.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.7", "::1"]
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]


@pytest.mark.parametrize("names", [[], ["bad name"], ["..x"], ["bücher.de"]])
def test_server_bad_names(root, names) -> None:
    with pytest.raises(InputError):
        root.issue_server(names)


@pytest.mark.parametrize("device_id", ["", "has space", "-lead", "x" * 65, "a/b", "dev\n", "dév"])
def test_bad_device_id(root, device_id) -> None:
    with pytest.raises(InputError, match="device id"):
        root.issue_client(device_id)


@pytest.mark.parametrize(
    "key_type", [KeyType.P384, KeyType.RSA2048, KeyType.RSA3072, KeyType.RSA4096]
)
def test_key_types(root, key_type) -> None:
    _key, cert = root.issue_client("dev-kt", key_type=key_type)
    assert key_type_of(cert.public_key()) is key_type


def test_ed25519_needs_flag(root) -> None:
    with pytest.raises(PolicyError, match="allow-ed25519"):
        root.issue_client("dev-ed", key_type=KeyType.ED25519)
    _, cert = root.issue_client("dev-ed", key_type=KeyType.ED25519, allow_ed25519=True)
    assert key_type_of(cert.public_key()) is KeyType.ED25519


def test_p384_ca_signs_with_sha384() -> None:
    ca = create_root_ca("P384", key_type=KeyType.P384)
    assert ca.cert.signature_hash_algorithm.name == "sha384"


def test_leaf_never_outlives_issuer() -> None:
    now = datetime.now(timezone.utc)
    ca = create_root_ca("Short", days=10, now=now)
    _, cert = ca.issue_client("dev-long", days=365)
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_validity_range(root) -> None:
    with pytest.raises(InputError, match="out of range"):
        root.issue_client("d", days=0)
