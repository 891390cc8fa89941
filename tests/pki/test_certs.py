from __future__ import annotations

import dataclasses
from datetime import UTC

import pytest

from provision.errors import InputError
from provision.pki.certs import (
    cert_der,
    cert_pem,
    describe_certificate,
    load_certificates,
    to_der,
    to_pem,
)


def test_load_pem_chain_and_der(root, intermediate) -> None:
    pem = cert_pem(intermediate.cert) + cert_pem(root.cert)
    certs = load_certificates(pem, "chain.pem")
    assert [c.subject for c in certs] == [intermediate.cert.subject, root.cert.subject]
    assert load_certificates(cert_der(root.cert), "root.der") == [root.cert]


def test_describe(root, intermediate) -> None:
    s = describe_certificate(cert_pem(intermediate.cert))
    assert s.subject == "CN=Test Issuing CA"
    assert s.issuer == "CN=Test Root CA,O=provision tests"
    assert s.is_ca
    assert s.serial == intermediate.cert.serial_number
    assert s.not_before.tzinfo is UTC and s.not_after > s.not_before
    assert len(s.sha256_fingerprint) == 64
    assert describe_certificate(cert_der(root.cert)).sha256_fingerprint != s.sha256_fingerprint
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.serial = 1  # type: ignore[misc]


def test_convert(root) -> None:
    pem, der = cert_pem(root.cert), cert_der(root.cert)
    assert to_der(pem) == der and to_pem(der) == pem
    assert to_der(der) == der and to_pem(pem) == pem


def test_to_der_refuses_chain(root, intermediate) -> None:
    with pytest.raises(InputError, match="one certificate"):
        to_der(cert_pem(root.cert) + cert_pem(intermediate.cert))


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (b"", "empty"),
        (b"just text", "not a PEM or DER certificate"),
        (b"\x30\x82\x01\x00garbage", "not a PEM or DER certificate"),
        (b"-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n", "no CERTIFICATE"),
    ],
)
def test_bad_input(data: bytes, expect: str) -> None:
    with pytest.raises(InputError) as err:
        load_certificates(data, "in.crt")
    assert err.value.message.startswith("in.crt: ") and expect in err.value.message


def test_truncated_pem(root) -> None:
    pem = cert_pem(root.cert)
    with pytest.raises(InputError, match="truncated PEM"):
        load_certificates(pem[: len(pem) // 2], "half.pem")


def test_damaged_pem(root) -> None:
    pem = bytearray(cert_pem(root.cert))
    pem[100:110] = b"!!!!!!!!!!"
    with pytest.raises(InputError, match="damaged PEM"):
        load_certificates(bytes(pem), "bad.pem")


def test_truncated_der(root) -> None:
    with pytest.raises(InputError, match="not a PEM or DER"):
        load_certificates(cert_der(root.cert)[:-10], "cut.der")
