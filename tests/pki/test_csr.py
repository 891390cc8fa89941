from __future__ import annotations

import pytest
from asn1crypto import csr as asn1_csr
from asn1crypto.core import Null
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provision.errors import InputError, PolicyError
from provision.pki.csr import create_csr, csr_bytes, load_csr
from provision.pki.keys import KeyType, generate_key, public_key_der
from provision.pki.profiles import Profile


def with_null_parameters(der: bytes) -> bytes:
    """What older nRF91 modem firmware produces: ecdsa-with-SHA256 followed by NULL."""
    req = asn1_csr.CertificationRequest.load(der)
    alg = {"algorithm": req["signature_algorithm"]["algorithm"].native}
    out = asn1_csr.CertificationRequest(
        {
            "certification_request_info": req["certification_request_info"],
            "signature_algorithm": alg,
            "signature": req["signature"],
        }
    )
    out["signature_algorithm"]["parameters"] = Null()
    data = out.dump(force=True)
    assert b"\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02\x05\x00" in data
    return data


@pytest.fixture(scope="module")
def device_key():
    return generate_key()


def test_round_trip_pem_der(device_key) -> None:
    csr = create_csr(device_key, "dev-0001", san=["dev.example"])
    for enc in ("pem", "der"):
        loaded = load_csr(csr_bytes(csr, enc), "dev.csr")
        assert loaded.csr == csr and not loaded.repaired_null_parameters
        assert loaded.csr.is_signature_valid


def test_sign_csr_client(intermediate, device_key) -> None:
    csr = create_csr(device_key, "dev-0001")
    cert = intermediate.sign_request(csr, device_id="dev-0001")
    assert public_key_der(cert.public_key()) == public_key_der(device_key)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev-0001"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_subject_taken_from_device_id_when_csr_has_none(root, device_key) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(device_key, hashes.SHA256())
    )
    with pytest.raises(PolicyError, match="no subject CN"):
        root.sign_request(csr)
    cert = root.sign_request(csr, device_id="dev-7")
    assert cert.subject.rfc4514_string() == "CN=dev-7"


def test_subject_must_match_device_id(root, device_key) -> None:
    with pytest.raises(PolicyError, match="does not match the device id"):
        root.sign_request(create_csr(device_key, "dev-0001"), device_id="dev-0002")


def test_key_type_policy(root) -> None:
    csr = create_csr(generate_key(KeyType.RSA2048), "dev-rsa")
    with pytest.raises(PolicyError, match="rsa2048 is not allowed"):
        root.sign_request(csr, allowed_key_types=(KeyType.P256,))
    ed = create_csr(generate_key(KeyType.ED25519), "dev-ed")
    with pytest.raises(PolicyError, match="ed25519 is not allowed"):
        root.sign_request(ed)


def test_bad_signature_refused(root, device_key) -> None:
    der = csr_bytes(create_csr(device_key, "dev-0001"), "der")
    tampered = der.replace(b"dev-0001", b"dev-0009")
    loaded = load_csr(tampered, "t.csr")
    with pytest.raises(PolicyError, match="signature does not verify"):
        root.sign_request(loaded.csr, source="t.csr")


def test_requested_extensions_are_ignored(root, device_key) -> None:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sneaky")]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(device_key, hashes.SHA256())
    )
    cert = root.sign_request(csr)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_server_profile_names(root, device_key) -> None:
    csr = create_csr(device_key, "api.example.com")
    cert = root.sign_request(csr, profile=Profile.SERVER, san=["api.example.com", "10.1.1.1"])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.example.com"]


def _strict_parser_refuses(der: bytes) -> bool:
    try:
        x509.load_der_x509_csr(der)
    except ValueError:
        return True
    return False


def test_null_parameters_repaired_then_verified(root, device_key) -> None:
    der = csr_bytes(create_csr(device_key, "dev-nrf"), "der")
    quirky = with_null_parameters(der)
    loaded = load_csr(quirky, "modem.csr")
    # cryptography's parser refuses the NULL from 49 on; older ones (the floor) take it as is.
    assert loaded.repaired_null_parameters == _strict_parser_refuses(quirky)
    assert loaded.csr.is_signature_valid
    cert = root.sign_request(loaded.csr, device_id="dev-nrf")
    assert public_key_der(cert.public_key()) == public_key_der(device_key)


def test_null_parameters_with_bad_signature_still_refused(root, device_key) -> None:
    der = csr_bytes(create_csr(device_key, "dev-nrf1"), "der")
    quirky = with_null_parameters(der).replace(b"dev-nrf1", b"dev-nrf2")
    loaded = load_csr(quirky, "modem.csr")
    with pytest.raises(PolicyError, match="signature"):
        root.sign_request(loaded.csr)


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (b"", "empty"),
        (b"garbage", "not a PEM or DER certificate signing request"),
        (b"\x30\x05\x02\x01\x00\x05\x00", "not a PEM or DER"),
        (
            b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
            "no CERTIFICATE REQUEST",
        ),
        (b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB", "truncated PEM"),
    ],
)
def test_bad_csr_input(data: bytes, expect: str) -> None:
    with pytest.raises(InputError) as err:
        load_csr(data, "in.csr")
    assert err.value.message.startswith("in.csr: ") and expect in err.value.message


def test_keygen_reply_text(root, device_key) -> None:
    import base64

    der = with_null_parameters(csr_bytes(create_csr(device_key, "dev-kg"), "der"))
    b64 = base64.urlsafe_b64encode(der).rstrip(b"=")
    cose = base64.urlsafe_b64encode(b"\xd2\x84cose").rstrip(b"=")
    for text in (b64, b64 + b"." + cose, b'%KEYGEN: "' + b64 + b"." + cose + b'"\r\n'):
        loaded = load_csr(text, "keygen.txt")
        assert loaded.repaired_null_parameters == _strict_parser_refuses(der)
        assert root.sign_request(loaded.csr, device_id="dev-kg")
