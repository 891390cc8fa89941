"""The simulated device (every dialect) proves its own slots with a real mutual-TLS handshake."""

from __future__ import annotations

import pytest
from pki import PASSWORD
from tls_helpers import needs_openssl

import provision.device
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.tls.device_check import TLSCheckUnsupported, check_on_device
from provision.tls.report import Failure

DIALECTS = ["native", "at-cmng", "zephyr-shell"]


def credentials(pki, *, root=None, pair=None, key=None, encrypted=False, password=True, tag=42):
    pair = pair or pki.client
    slots = [
        Slot(tag, SlotType.ROOT_CA, Encoding.PEM, root or pki.root),
        Slot(tag, SlotType.CLIENT_CERT, Encoding.PEM, pair.cert),
    ]
    if encrypted:
        slots.append(
            Slot(
                tag,
                SlotType.CLIENT_KEY,
                Encoding.PEM,
                pki.client_encrypted.key,
                SlotFlags.ENCRYPTED,
            )
        )
        if password:
            slots.append(Slot(tag, SlotType.KEY_PASSWORD, Encoding.RAW, PASSWORD))
    else:
        slots.append(Slot(tag, SlotType.CLIENT_KEY, Encoding.PEM, key or pair.key))
    return CredentialSet.of(slots)


def on_device(url: str, dialect: str, creds: CredentialSet, port: int, **options):
    with provision.device.open(url, dialect=dialect) as device:
        device.write(creds)
        return check_on_device(device, "localhost", port, 42, **options)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_each_simulator_handshakes_with_its_own_slots(pki, test_server, dialect, version):
    server, events = test_server()
    report = on_device(
        f"sim://{dialect}", dialect, credentials(pki), server.port, tls_version=version
    )
    assert report.ok, report.summary()
    assert report.version == f"TLSv{version}"
    assert report.server_chain == ("CN=localhost", "CN=Provision Test Root,O=provision tests")
    assert report.accepted_as == "CN=device-1,O=provision tests"
    server.stop()
    assert [e.accepted for e in events] == [True]


@needs_openssl
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("strict", [False, True], ids=["issue-command", "verify_return_error"])
def test_openssl_s_server_accepts_the_simulated_device(pki, s_server, dialect, version, strict):
    # The command (-Verify 1 -CAfile root -cert server -key server), and the same with
    # -verify_return_error, under which s_server really refuses a bad client certificate.
    port = s_server(tls=version, extra=["-verify_return_error"] if strict else [])
    report = on_device(f"sim://{dialect}", dialect, credentials(pki), port)
    assert report.ok, report.summary()
    assert report.version == f"TLSv{version}"
    assert report.client_accepted is True


@pytest.mark.parametrize("dialect", ["native", "at-cmng"])
def test_encrypted_key_with_its_password_on_the_device(pki, test_server, dialect):
    server, _ = test_server()
    report = on_device(f"sim://{dialect}", dialect, credentials(pki, encrypted=True), server.port)
    assert report.ok, report.summary()


@pytest.mark.parametrize(
    ("make", "server_roots", "failure", "words"),
    [
        (lambda p: credentials(p, root=p.other_root), None, Failure.UNKNOWN_CA, "root_ca"),
        (
            lambda p: credentials(p, pair=p.expired_client),
            None,
            Failure.CLIENT_CERT_REJECTED,
            "expired",
        ),
        (lambda p: credentials(p, key=p.stranger_key), None, Failure.KEY_MISMATCH, "key"),
        (lambda p: credentials(p), "other", Failure.CLIENT_CERT_REJECTED, "CA"),
        (
            lambda p: credentials(p, encrypted=True, password=False),
            None,
            Failure.KEY_PASSWORD_MISSING,
            "key_password",
        ),
    ],
    ids=["unknown_ca", "expired_client_cert", "wrong_key", "server_other_ca", "password_missing"],
)
def test_named_failures_from_the_native_device(
    pki, test_server, make, server_roots, failure, words
):
    roots = (pki.other_root,) if server_roots == "other" else None
    server, _ = test_server(roots=roots)
    report = on_device("sim://native", "native", make(pki), server.port)
    assert report.failure is failure, report.summary()
    assert words in report.detail
    assert not report.ok


@pytest.mark.parametrize("dialect", ["at-cmng", "zephyr-shell"])
def test_named_failures_from_text_dialects(pki, test_server, dialect):
    server, _ = test_server()
    report = on_device(
        f"sim://{dialect}", dialect, credentials(pki, root=pki.other_root), server.port
    )
    assert report.failure is Failure.UNKNOWN_CA
    report = on_device(
        f"sim://{dialect}", dialect, credentials(pki, pair=pki.expired_client), server.port
    )
    assert report.failure is Failure.CLIENT_CERT_REJECTED and "expired" in report.detail


def test_device_without_tls_check_says_so_and_offers_the_bundle(pki, test_server):
    server, _ = test_server()
    with pytest.raises(TLSCheckUnsupported) as caught:
        on_device("sim://native?tls=0", "native", credentials(pki), server.port)
    assert "--bundle FILE" in caught.value.message
    assert f"--server localhost:{server.port} --tag 42" in caught.value.message


def test_at_cmng_keeps_the_key_password_in_flash(pki, test_server, tmp_path):
    """A modem keeps <passwd> with the key: a later session (new boot) can still use it."""
    server, _ = test_server()
    url = f"sim://at-cmng?flash={tmp_path / 'modem.flash'}"
    with provision.device.open(url, dialect="at-cmng") as device:
        device.write(credentials(pki, encrypted=True))
        listed = {(s.sec_tag, s.type) for s in device.list()}
    assert listed == {(42, SlotType.ROOT_CA), (42, SlotType.CLIENT_CERT), (42, SlotType.CLIENT_KEY)}
    with provision.device.open(url, dialect="at-cmng") as device:
        report = check_on_device(device, "localhost", server.port, 42)
        assert report.ok, report.summary()
        device.delete(42, SlotType.CLIENT_KEY)
        assert check_on_device(device, "localhost", server.port, 42).failure is (
            Failure.BAD_CREDENTIALS
        )
