from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from provision.bundle.model import Encoding, Slot, SlotType
from provision.check import Severity, check_credential_set, exit_code_for
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_der, cert_pem
from provision.pki.keys import generate_key, serialize_private_key


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_good_set_is_clean(good_set, make_set, password) -> None:
    assert check_credential_set(good_set) == []
    assert exit_code_for([], strict=True) == 0


def test_findings_are_frozen_and_carry_tag(pki, device, make_set, password) -> None:
    _key, cert = device
    other_key = generate_key()
    cs = make_set(
        [cert_pem(pki.root.cert)],
        cert_pem(cert) + cert_pem(pki.intermediate.cert),
        serialize_private_key(other_key),
    )
    (f,) = check_credential_set(cs)
    assert (f.code, f.severity, f.sec_tag, f.slot) == (
        "key.mismatch",
        Severity.ERROR,
        42,
        "client_key",
    )
    assert exit_code_for([f], strict=False) == 2


def test_chain_untrusted_under_other_root(pki, device, make_set, password) -> None:
    key, cert = device
    cs = make_set(
        [cert_pem(pki.other_root.cert)],
        cert_pem(cert) + cert_pem(pki.intermediate.cert),
        serialize_private_key(key),
    )
    assert codes(check_credential_set(cs)) == {"chain.untrusted"}


def test_missing_intermediate_is_untrusted(pki, device, make_set, password) -> None:
    key, cert = device
    cs = make_set([cert_pem(pki.root.cert)], cert_pem(cert), serialize_private_key(key))
    assert codes(check_credential_set(cs)) == {"chain.untrusted"}


def test_dates(pki, make_set, password) -> None:
    now = datetime.now(UTC)
    ca = create_root_ca("Old Root", now=now - timedelta(days=60))
    root = cert_pem(ca.cert)
    key, old = ca.issue_client("old-dev", days=10, now=now - timedelta(days=30))
    found = check_credential_set(make_set([root], cert_pem(old), serialize_private_key(key)))
    # Expired, and only that: trust is judged separately from dates.
    assert codes(found) == {"cert.expired"}
    key, fresh = ca.issue_client("new-dev", days=10)
    cs = make_set([root], cert_pem(fresh), serialize_private_key(key))
    assert codes(check_credential_set(cs)) == {"cert.expires_soon"}
    soon = check_credential_set(cs)
    assert soon[0].severity is Severity.WARNING
    assert exit_code_for(soon, strict=False) == 0 and exit_code_for(soon, strict=True) == 1
    assert check_credential_set(cs, expiry_warning_days=5) == []
    early = check_credential_set(cs, now=now - timedelta(days=2))
    assert codes(early) == {"cert.not_yet_valid"}


def test_eku_client_auth_missing(pki, make_set, password) -> None:
    key, server = pki.root.issue_server(["device.example"])
    cs = make_set([cert_pem(pki.root.cert)], cert_pem(server), serialize_private_key(key))
    found = codes(check_credential_set(cs))
    assert "eku.client_auth_missing" in found


def test_root_not_ca_and_not_self_signed(pki, device, make_set, password) -> None:
    _key, cert = device
    cs = make_set([cert_pem(cert)], None, None)
    found = {(f.code, f.severity) for f in check_credential_set(cs)}
    assert ("root.not_ca", Severity.ERROR) in found
    assert ("root.not_self_signed", Severity.ERROR) in found
    cs = make_set([cert_pem(pki.intermediate.cert)], None, None)
    assert {(f.code, f.severity) for f in check_credential_set(cs)} == {
        ("root.not_self_signed", Severity.WARNING)
    }


def test_self_issued_but_forged_root_is_not_self_signed(pki, make_set, password) -> None:
    # Same subject as the real root, signed by another key: name equality is not enough.
    forged = (
        x509.CertificateBuilder()
        .subject_name(pki.root.cert.subject)
        .issuer_name(pki.root.cert.subject)
        .public_key(generate_key().public_key())
        .serial_number(1)
        .not_valid_before(pki.root.cert.not_valid_before_utc)
        .not_valid_after(pki.root.cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(pki.other_root.key, hashes.SHA256())
    )
    found = codes(check_credential_set(make_set([cert_pem(forged)], None, None)))
    assert found == {"root.not_self_signed"}


def test_password_wrong_missing_and_argument(pki, device, make_set, password) -> None:
    key, cert = device
    chain = cert_pem(cert) + cert_pem(pki.intermediate.cert)
    enc = serialize_private_key(key, password=password)
    root = [cert_pem(pki.root.cert)]
    assert codes(check_credential_set(make_set(root, chain, enc, b"wrong"))) == {
        "key.password_wrong"
    }
    assert codes(check_credential_set(make_set(root, chain, enc))) == {"key.password_missing"}
    assert check_credential_set(make_set(root, chain, enc), key_password=password) == []
    wrong = check_credential_set(make_set(root, chain, enc), key_password=b"nope")
    assert codes(wrong) == {"key.password_wrong"}
    assert all(password.decode() not in f.message and "nope" not in f.message for f in wrong)


def test_unreadable_items_are_findings(pki, make_set, password) -> None:
    cs = make_set([b"not a cert"], b"-----BEGIN CERTIFICATE-----\nAAAA", b"junk")
    found = codes(check_credential_set(cs))
    assert found == {"cert.unreadable", "key.invalid"}


def test_der_items(pki, device, make_set, password) -> None:
    key, cert = device
    slots = [
        Slot(1, SlotType.ROOT_CA, Encoding.DER, cert_der(pki.root.cert)),
        Slot(
            1, SlotType.CLIENT_CERT, Encoding.PEM, cert_pem(cert) + cert_pem(pki.intermediate.cert)
        ),
        Slot(1, SlotType.CLIENT_KEY, Encoding.DER, serialize_private_key(key, encoding="der")),
    ]
    from provision.bundle.model import CredentialSet

    assert check_credential_set(CredentialSet.of(slots), target="nrf91") == []


def test_several_roots_one_matching(pki, device, make_set, password) -> None:
    key, cert = device
    cs = make_set(
        [cert_pem(pki.other_root.cert), cert_pem(pki.root.cert)],
        cert_pem(cert) + cert_pem(pki.intermediate.cert),
        serialize_private_key(key),
    )
    assert check_credential_set(cs) == []


def test_rsa_root_ed25519_free(pki, make_set, password) -> None:
    # An RSA root and a P-256 device verify together (mixed algorithms are common).
    from provision.pki.keys import KeyType

    rsa_root = create_root_ca("RSA Root", key_type=KeyType.RSA2048)
    key, cert = rsa_root.issue_client("dev-rsa")
    cs = make_set([cert_pem(rsa_root.cert)], cert_pem(cert), serialize_private_key(key))
    assert check_credential_set(cs) == []
