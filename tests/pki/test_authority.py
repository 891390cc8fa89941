from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


@pytest.mark.parametrize("device_id", ["", "has space", "-lead", "a/b", "dev\n", "dév"])
def test_bad_device_id(root, device_id) -> None:
    with pytest.raises(InputError, match="device id"):
        root.issue_client(device_id)


def test_too_long_device_id_is_refused_by_policy_and_clipped(root) -> None:
    # docs/bundle-format.md: pack exit 3 (invalid) or 6 (too long).
    with pytest.raises(PolicyError, match="too long") as err:
        root.issue_client("x" * 10_000)
    assert len(err.value.message) < 200 and "10000 characters" in err.value.message


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
    now = datetime.now(UTC)
    ca = create_root_ca("Short", days=10, now=now)
    _, cert = ca.issue_client("dev-long", days=365)
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_validity_range(root) -> None:
    with pytest.raises(InputError, match="out of range"):
        root.issue_client("d", days=0)


@pytest.mark.parametrize("serial", [1, 0x1234, 2**159 - 1])
def test_chosen_serial_is_the_certificate_serial(intermediate, serial: int) -> None:
    _key, cert = intermediate.issue_client("dev-serial", serial=serial)
    assert cert.serial_number == serial
    cert.verify_directly_issued_by(intermediate.cert)


@pytest.mark.parametrize(
    ("serial", "message"),
    [(0, "positive"), (-5, "positive"), (2**159, "160 bits"), (True, "integer"), ("7", "integer")],
)
def test_bad_chosen_serial_refused(root, serial, message: str) -> None:
    with pytest.raises(InputError, match=message):
        root.issue_client("dev-1", serial=serial)


def test_sign_request_takes_serial_and_subject_template(intermediate) -> None:
    from provision.pki.authority import SubjectTemplate
    from provision.pki.csr import create_csr
    from provision.pki.keys import generate_key

    csr = create_csr(generate_key(KeyType.P256), "dev-7")
    template = SubjectTemplate.parse("O=Acme,OU=Line 3,CN={device_id}")
    cert = intermediate.sign_request(csr, device_id="dev-7", serial=77, subject=template)
    assert cert.serial_number == 77
    assert cert.subject.rfc4514_string() == "CN=dev-7,OU=Line 3,O=Acme"
    assert cert.public_key().public_numbers() == csr.public_key().public_numbers()
    with pytest.raises(InputError, match="positive"):
        intermediate.sign_request(csr, device_id="dev-7", serial=0)


def test_subject_template_keeps_written_order_and_escapes(root) -> None:
    from provision.pki.authority import SubjectTemplate

    template = SubjectTemplate.parse(r"C=NO,O=Acme\, Inc.,OU=Line 3+L=Oslo,CN={device_id}")
    _key, cert = root.issue_client("dev-9", subject=template)
    rdns = [[(a.rfc4514_attribute_name, a.value) for a in rdn] for rdn in cert.subject.rdns]
    assert rdns == [
        [("C", "NO")],
        [("O", "Acme, Inc.")],
        sorted([("OU", "Line 3"), ("L", "Oslo")]),
        [("CN", "dev-9")],
    ]
    # The default template and the older organization= give the same names as before.
    plain = root.issue_client("dev-9", subject=SubjectTemplate.parse("O=Acme,CN={device_id}"))
    assert plain[1].subject == root.issue_client("dev-9", organization="Acme")[1].subject
    with pytest.raises(InputError, match="not both"):
        root.issue_client("dev-9", subject=template, organization="Acme")
    with pytest.raises(InputError, match="device id"):
        template.name("bad id")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("CN={serial}", "needs {device_id} exactly once"),
        ("O=Acme", "needs {device_id}"),
        ("CN={device_id},CN=x", "only one CN"),
        ("CN=dev-{device_id}", "CN must be exactly"),
        ("O={device_id},CN=x", "only in the CN"),
        ("O=a{b},CN={device_id}", "only in the CN"),
        ("O=,CN={device_id}", "O is empty"),
        ("C=NOR,CN={device_id}", "length"),
        ("XX=1,CN={device_id}", "RFC 4514"),
    ],
)
def test_bad_subject_templates(text: str, message: str) -> None:
    from provision.pki.authority import SubjectTemplate

    with pytest.raises(InputError, match=message.replace("{", r"\{").replace("}", r"\}")):
        SubjectTemplate.parse(text)
