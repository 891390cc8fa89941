"""Issuing with a CA key held in SoftHSM2, addressed by an RFC 7512 pkcs11: URI."""

from __future__ import annotations

import copy
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provision.errors import HSMError, InputError
from provision.pki.authority import create_root_ca
from provision.pki.hsm import (
    Pkcs11Uri,
    close_sessions,
    generate_hsm_key,
    load_hsm_key,
    resolve_pin,
)

# -- URI parsing (no token needed) ----------------------------------------------------


def test_uri_parses_rfc7512_attributes() -> None:
    uri = Pkcs11Uri.parse(
        "pkcs11:token=My%20Token;object=ca%3Bkey;id=%01%a0;type=private"
        "?module-path=/usr/lib/x.so&pin-source=file:/run/pin"
    )
    assert uri.token == "My Token"
    assert uri.object == "ca;key"
    assert uri.id == b"\x01\xa0"
    assert uri.module_path == "/usr/lib/x.so"
    assert uri.pin_source == "file:/run/pin"
    assert "pin" not in repr(uri).lower().replace("pin_source", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pkcs11:token=t;object=k?pin-value=1234", "pin-value"),
        ("pkcs11:token=t;colour=red;object=k", "unknown attribute 'colour'"),
        ("pkcs11:token=t", "object=LABEL or id"),
        ("pkcs11:object=k;type=public", "type=private"),
        ("pkcs11:id=%zz", "bad %XX"),
        ("/path/ca.key", "pkcs11: URI"),
    ],
)
def test_bad_uris_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Pkcs11Uri.parse(text)


def test_pin_comes_from_file_or_environment(tmp_path: Path, monkeypatch) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("4321\n")
    assert resolve_pin(Pkcs11Uri.parse(f"pkcs11:object=k?pin-source=file:{pin_file}")) == "4321"
    monkeypatch.setenv("PROVISION_PKCS11_PIN", "9999")
    assert resolve_pin(Pkcs11Uri.parse("pkcs11:object=k")) == "9999"
    pin_file.write_text("")
    with pytest.raises(HSMError, match="empty"):
        resolve_pin(Pkcs11Uri.parse(f"pkcs11:object=k?pin-source={pin_file}"))


# -- SoftHSM2 -------------------------------------------------------------------------


@pytest.mark.softhsm
def test_token_key_is_a_cryptography_key_that_cannot_be_exported(hsm_uri: str) -> None:
    key = load_hsm_key(hsm_uri)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert copy.deepcopy(key) is key
    with pytest.raises(HSMError, match="cannot be exported"):
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    assert "pin" not in repr(key).lower()


@pytest.mark.softhsm
def test_signatures_from_the_token_verify(hsm_uri: str) -> None:
    key = load_hsm_key(hsm_uri)
    signature = key.sign(b"factory line", ec.ECDSA(hashes.SHA256()))
    key.public_key().verify(signature, b"factory line", ec.ECDSA(hashes.SHA256()))


@pytest.mark.softhsm
def test_ca_in_token_issues_certificates_openssl_accepts(hsm_uri: str, tmp_path: Path) -> None:
    ca = create_root_ca("Line CA (HSM)", key=load_hsm_key(hsm_uri))
    _, leaf = ca.issue_client("uid-0042")
    leaf.verify_directly_issued_by(ca.cert)
    (tmp_path / "ca.pem").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-CAfile",
            tmp_path / "ca.pem",
            tmp_path / "leaf.pem",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert leaf.subject.rfc4514_string() == "CN=uid-0042"


@pytest.mark.softhsm
def test_token_signs_device_csrs(hsm_uri: str) -> None:
    ca = create_root_ca("Line CA (HSM)", key=load_hsm_key(hsm_uri))
    device_key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "uid-7")]))
        .sign(device_key, hashes.SHA256())
    )
    cert = ca.sign_request(csr, device_id="uid-7")
    cert.verify_directly_issued_by(ca.cert)
    assert cert.public_key() == device_key.public_key()


@pytest.mark.softhsm
def test_threads_share_one_token_session(hsm_uri: str) -> None:
    ca = create_root_ca("Line CA (HSM)", key=load_hsm_key(hsm_uri))
    certs: list[x509.Certificate] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(4):
                certs.append(ca.issue_client(f"uid-{n}-{i}")[1])
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(certs) == 24
    for cert in certs:
        cert.verify_directly_issued_by(ca.cert)


@pytest.mark.softhsm
def test_rsa_key_generated_in_token(hsm_uri: str) -> None:
    base = hsm_uri.split(";object=")[0]
    query = hsm_uri.split("?", 1)[1]
    uri = f"{base};object=rsa-ca;id=%07?{query}"
    generate_hsm_key(uri, "rsa2048")
    key = load_hsm_key(uri)
    assert isinstance(key, rsa.RSAPrivateKey)
    ca = create_root_ca("RSA CA (HSM)", key=key)
    ca.cert.verify_directly_issued_by(ca.cert)
    _, leaf = ca.issue_client("uid-rsa")
    leaf.verify_directly_issued_by(ca.cert)


@pytest.mark.softhsm
def test_generated_key_is_sensitive_and_not_extractable(hsm_uri: str) -> None:
    import pkcs11

    key = load_hsm_key(hsm_uri)
    handle = key._handle
    assert handle[pkcs11.Attribute.SENSITIVE] is True
    assert handle[pkcs11.Attribute.EXTRACTABLE] is False


@pytest.mark.softhsm
def test_missing_key_and_wrong_pin_are_clear_errors(hsm_uri: str, monkeypatch) -> None:
    with pytest.raises(HSMError, match="no private key object=nope"):
        load_hsm_key(hsm_uri.replace("object=issuing-ca;id=%01", "object=nope"))
    close_sessions()  # a logged-in session would hide the wrong PIN
    monkeypatch.setenv("PROVISION_PKCS11_PIN", "not-the-pin")
    with pytest.raises(HSMError, match="PIN incorrect"):
        load_hsm_key(hsm_uri.split("?")[0])
    with pytest.raises(HSMError, match="no PKCS#11 token matches token=absent"):
        load_hsm_key("pkcs11:token=absent;object=x")


def test_missing_module_is_a_clear_error(monkeypatch) -> None:
    pytest.importorskip("pkcs11")
    with pytest.raises(HSMError, match="PKCS#11 module not found"):
        load_hsm_key("pkcs11:object=k?module-path=/nonexistent/libnope.so")
