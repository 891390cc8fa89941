from __future__ import annotations

from provision.check import check_credential_set
from provision.pki.certs import cert_pem


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_server_chain_under_provisioned_roots(pki, good_set) -> None:
    _, server = pki.intermediate.issue_server(["mqtt.example.com", "127.0.0.1"])
    chain = cert_pem(server) + cert_pem(pki.intermediate.cert)
    assert (
        check_credential_set(good_set, server_chain=chain, server_hostname="mqtt.example.com") == []
    )
    assert check_credential_set(good_set, server_chain=chain, server_hostname="127.0.0.1") == []
    found = check_credential_set(good_set, server_chain=chain, server_hostname="evil.example.com")
    assert codes(found) == {"server.hostname_mismatch"}
    # Without the intermediate the device cannot build the path.
    found = check_credential_set(
        good_set, server_chain=cert_pem(server), server_hostname="mqtt.example.com"
    )
    assert codes(found) == {"server.untrusted"}


def test_server_from_other_root(pki, good_set) -> None:
    _, server = pki.other_root.issue_server(["mqtt.example.com"])
    found = check_credential_set(
        good_set, server_chain=cert_pem(server), server_hostname="mqtt.example.com"
    )
    assert codes(found) == {"server.untrusted"}


def test_client_cert_is_not_a_server_cert(pki, good_set, device) -> None:
    _, cert = device
    chain = cert_pem(cert) + cert_pem(pki.intermediate.cert)
    found = check_credential_set(good_set, server_chain=chain, server_hostname="dev-0001")
    assert found and all(f.code.startswith("server.") for f in found)


def test_hostname_defaults_to_first_san(pki, good_set) -> None:
    _, server = pki.root.issue_server(["a.example"])
    found = check_credential_set(good_set, server_chain=cert_pem(server))
    assert codes(found) == {"server.hostname_assumed"}


def test_nrf91_server_chain_size(pki, good_set) -> None:
    _, server = pki.intermediate.issue_server(["mqtt.example.com"])
    chain = cert_pem(server) + cert_pem(pki.intermediate.cert) * 12
    found = check_credential_set(
        good_set, target="nrf91", server_chain=chain, server_hostname="mqtt.example.com"
    )
    assert "size.too_large" in codes(found)
    found = check_credential_set(good_set, server_chain=chain, server_hostname="mqtt.example.com")
    assert "size.too_large" not in codes(found)
