"""The client against provision's own test server: success and every named failure."""

from __future__ import annotations

import socket

import pytest
from pki import PASSWORD

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.pki.certs import to_der
from provision.pki.keys import load_private_key, serialize_private_key
from provision.tls.client import handshake, handshake_from_slots
from provision.tls.material import TLSMaterial
from provision.tls.report import Failure, HandshakeReport


def good(pki) -> TLSMaterial:
    return TLSMaterial((pki.root,), pki.client.cert, pki.client.key)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_accepted_reports_version_cipher_chain_and_subject(pki, test_server, version):
    server, events = test_server(tls_version=version)
    report = handshake("localhost", server.port, good(pki))
    assert report.ok, report.summary()
    assert report.version == f"TLSv{version}"
    assert report.cipher
    assert report.server_verified
    assert report.server_chain[0] == "CN=localhost"
    assert report.server_chain[-1] == "CN=Provision Test Root,O=provision tests"
    assert report.client_accepted is True
    assert report.accepted_as == "CN=device-1,O=provision tests"
    server.stop()
    assert [e.subject for e in events if e.accepted] == ["CN=device-1,O=provision tests"]


def test_version_pinned_on_the_client_side(pki, test_server):
    server, _ = test_server()
    assert handshake("localhost", server.port, good(pki), tls_version="1.2").version == "TLSv1.2"
    assert handshake("localhost", server.port, good(pki), tls_version="1.3").version == "TLSv1.3"


def test_version_mismatch_is_named(pki, test_server):
    server, _ = test_server(tls_version="1.3")
    report = handshake("localhost", server.port, good(pki), tls_version="1.2")
    assert report.failure is Failure.PROTOCOL_MISMATCH
    assert not report.ok


def test_unknown_ca_when_device_root_does_not_anchor_server(pki, test_server):
    server, events = test_server()
    material = TLSMaterial((pki.other_root,), pki.client.cert, pki.client.key)
    report = handshake("localhost", server.port, material)
    assert report.failure is Failure.UNKNOWN_CA
    assert "root_ca" in report.detail
    assert not report.server_verified and report.client_accepted is None
    server.stop()
    # The client sent its alert, so the server can say why, not just "EOF".
    assert events and "UNKNOWN_CA" in events[0].reason


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_expired_client_cert_is_rejected_by_server(pki, test_server, version):
    server, events = test_server(tls_version=version)
    material = TLSMaterial((pki.root,), pki.expired_client.cert, pki.expired_client.key)
    report = handshake("localhost", server.port, material)
    assert report.failure is Failure.CLIENT_CERT_REJECTED
    assert "expired" in report.detail
    assert report.client_accepted is not True
    server.stop()
    assert not events[0].accepted and "expired" in events[0].reason


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_server_requiring_a_different_ca_rejects_us(pki, test_server, version):
    server, events = test_server(roots=(pki.other_root,), tls_version=version)
    report = handshake("localhost", server.port, good(pki))
    assert report.failure is Failure.CLIENT_CERT_REJECTED
    assert "CA" in report.detail
    server.stop()
    assert not events[0].accepted
    assert events[0].reason.startswith("client certificate not accepted")


def test_wrong_client_key_is_key_mismatch(pki, test_server):
    server, events = test_server()
    material = TLSMaterial((pki.root,), pki.client.cert, pki.stranger_key)
    report = handshake("localhost", server.port, material)
    assert report.failure is Failure.KEY_MISMATCH
    server.stop()
    assert events == []  # caught before a byte was sent


def test_encrypted_key_with_password(pki, test_server):
    server, _ = test_server()
    material = TLSMaterial((pki.root,), pki.client.cert, pki.client_encrypted.key, PASSWORD)
    assert handshake("localhost", server.port, material).ok


def test_encrypted_key_without_password_is_named(pki, test_server):
    server, _ = test_server()
    material = TLSMaterial((pki.root,), pki.client.cert, pki.client_encrypted.key)
    report = handshake("localhost", server.port, material)
    assert report.failure is Failure.KEY_PASSWORD_MISSING


def test_encrypted_key_with_wrong_password_is_named(pki, test_server):
    server, _ = test_server()
    material = TLSMaterial((pki.root,), pki.client.cert, pki.client_encrypted.key, b"not it")
    report = handshake("localhost", server.port, material)
    assert report.failure is Failure.KEY_PASSWORD_WRONG
    assert "not it" not in report.detail


def test_hostname_mismatch(pki, test_server):
    server, _ = test_server()
    report = handshake("127.0.0.1", server.port, good(pki), server_name="iot.example.com")
    assert report.failure is Failure.SERVER_HOSTNAME_MISMATCH


def test_ip_address_in_san_is_accepted(pki, test_server):
    server, _ = test_server()
    assert handshake("127.0.0.1", server.port, good(pki)).ok


def test_connection_refused():
    from tls_helpers import free_port

    report = handshake("127.0.0.1", free_port(), TLSMaterial((b"x",), b"x", b"x"))
    # Bad material is found first: the device checks what it holds before dialling.
    assert report.failure is Failure.BAD_CREDENTIALS


def test_connection_refused_with_good_material(pki):
    from tls_helpers import free_port

    report = handshake("127.0.0.1", free_port(), good(pki))
    assert report.failure is Failure.CONNECTION_REFUSED


def test_timeout_when_server_never_answers(pki):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes TCP; nobody ever speaks TLS
        report = handshake("127.0.0.1", silent.getsockname()[1], good(pki), timeout=0.5)
    assert report.failure is Failure.TIMEOUT


def test_der_encoded_slots_work(pki, test_server):
    server, _ = test_server()
    key = load_private_key(pki.client_encrypted.key, PASSWORD, "test")
    material = TLSMaterial(
        (to_der(pki.root),),
        to_der(pki.client.cert),
        serialize_private_key(key, encoding="der", password=PASSWORD),
        PASSWORD,
    )
    assert handshake("localhost", server.port, material).ok


def test_der_key_with_wrong_password_is_named(pki, test_server):
    server, _ = test_server()
    key = load_private_key(pki.client.key, None, "test")
    der = serialize_private_key(key, encoding="der", password=PASSWORD)
    report = handshake(
        "localhost", server.port, TLSMaterial((pki.root,), pki.client.cert, der, b"nope")
    )
    assert report.failure is Failure.KEY_PASSWORD_WRONG


def test_material_from_slots_uses_only_that_tag(pki, test_server):
    server, _ = test_server()
    creds = CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, Encoding.PEM, pki.root),
            Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, pki.client.cert),
            Slot(
                42, SlotType.CLIENT_KEY, Encoding.PEM, pki.client_encrypted.key, SlotFlags.ENCRYPTED
            ),
            Slot(42, SlotType.KEY_PASSWORD, Encoding.RAW, PASSWORD),
            # Tag 7 holds a root that does not anchor the server.
            Slot(7, SlotType.ROOT_CA, Encoding.PEM, pki.other_root),
            Slot(7, SlotType.CLIENT_CERT, Encoding.PEM, pki.client.cert),
            Slot(7, SlotType.CLIENT_KEY, Encoding.PEM, pki.client.key),
        ]
    )
    assert handshake_from_slots(creds, 42, "localhost", server.port).ok
    report = handshake_from_slots(creds, 7, "localhost", server.port)
    assert report.failure is Failure.UNKNOWN_CA and report.sec_tag == 7
    empty = handshake_from_slots(creds, 8, "localhost", server.port)
    assert empty.failure is Failure.BAD_CREDENTIALS and "sec_tag 8" in empty.detail


def test_missing_slots_are_bad_credentials(pki, test_server):
    server, _ = test_server()
    for material in (
        TLSMaterial((), pki.client.cert, pki.client.key),
        TLSMaterial((pki.root,), None, pki.client.key),
        TLSMaterial((pki.root,), pki.client.cert, None),
    ):
        assert handshake("localhost", server.port, material).failure is Failure.BAD_CREDENTIALS


def test_secrets_stay_out_of_repr_and_reports(pki):
    material = TLSMaterial((pki.root,), pki.client.cert, pki.client_encrypted.key, PASSWORD)
    assert PASSWORD.decode() not in repr(material)
    assert "PRIVATE KEY" not in repr(material)
    from tls_helpers import free_port

    report = handshake("127.0.0.1", free_port(), TLSMaterial((pki.root,), pki.client.cert, None))
    assert "PRIVATE" not in str(report.to_dict())


def test_report_round_trips_through_dict():
    report = HandshakeReport(
        "h:1",
        Failure.NONE,
        version="TLSv1.3",
        cipher="X",
        server_chain=("CN=a", "CN=b"),
        server_verified=True,
        client_accepted=True,
        accepted_as="CN=d",
        evidence="e",
        sec_tag=42,
    )
    assert HandshakeReport.from_dict(report.to_dict()) == report
    failed = HandshakeReport("h:1", Failure.UNKNOWN_CA, "why")
    assert HandshakeReport.from_dict(failed.to_dict()) == failed
    assert failed.to_dict()["failure"] == "unknown_ca"


def test_silent_tls13_server_leaves_acceptance_unknown(pki):
    """A server that never says anything after the handshake proves nothing: not ok."""
    import threading

    from provision.tls.material import server_context

    ctx = server_context(TLSMaterial((pki.root,), pki.server.cert, pki.server.key), "1.3")
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with ctx.wrap_socket(conn, server_side=True):
            done.wait(10)  # hold the connection open, say nothing

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        report = handshake("localhost", listener.getsockname()[1], good(pki), confirm_timeout=0.2)
    finally:
        done.set()
        thread.join(5)
        listener.close()
    assert report.failure is Failure.NONE and report.server_verified
    assert report.client_accepted is None
    assert not report.ok
    assert "nothing" in report.evidence


def test_key_files_are_private_and_gone_after_loading(pki, monkeypatch):
    """ssl reads cert and key from files: 0700 dir, 0600 files, deleted once loaded."""
    import os
    import stat

    from provision.tls import material as mat

    seen: list[tuple[int, int, int]] = []
    real_load = mat.ssl.SSLContext.load_cert_chain

    def spy(self, certfile, keyfile=None, password=None):
        seen.append(
            (
                stat.S_IMODE(os.stat(os.path.dirname(certfile)).st_mode),
                stat.S_IMODE(os.stat(certfile).st_mode),
                stat.S_IMODE(os.stat(keyfile).st_mode),
            )
        )
        seen_paths.append(os.path.dirname(certfile))
        return real_load(self, certfile, keyfile, password)

    seen_paths: list[str] = []
    monkeypatch.setattr(mat.ssl.SSLContext, "load_cert_chain", spy)
    mat.client_context(good(pki))
    assert seen == [(0o700, 0o600, 0o600)]
    assert not os.path.exists(seen_paths[0])


def test_test_server_listens_on_loopback_only(pki, test_server):
    server, _ = test_server()
    assert server.address.startswith("127.0.0.1:")
