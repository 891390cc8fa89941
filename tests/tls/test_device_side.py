"""The device end of a TLS check over what a simulator's flash holds (each family's numbering)."""

from __future__ import annotations

from pki import PASSWORD

from provision.bundle.model import SlotType
from provision.tls import wire
from provision.tls.device_side import at_tlscheck, device_check, shell_tlscheck
from provision.tls.report import Failure


def test_native_store_entries(pki, test_server):
    server, _ = test_server()
    entries = {
        (42, int(SlotType.ROOT_CA)): pki.root,
        (42, int(SlotType.CLIENT_CERT)): pki.client.cert,
        (42, int(SlotType.CLIENT_KEY)): pki.client_encrypted.key,
        (42, int(SlotType.KEY_PASSWORD)): PASSWORD,
        (43, int(SlotType.ROOT_CA)): pki.other_root,
    }
    report = device_check(entries, 42, "localhost", server.port, tls_version="1.3")
    assert report.ok and report.version == "TLSv1.3" and report.sec_tag == 42
    # Tag 43 has only a root: the device does not borrow tag 42's certificate.
    assert device_check(entries, 43, "localhost", server.port).failure is Failure.BAD_CREDENTIALS


def test_at_cmng_extension(pki, test_server):
    server, _ = test_server()
    # %CMNG types: 0 root CA, 1 client cert, 2 client key; the passwd is kept with the key.
    entries = {(7, 0): pki.root, (7, 1): pki.client.cert, (7, 2): pki.client_encrypted.key}
    command = wire.encode_at(7, "localhost", server.port, "1.2")
    lines, final = at_tlscheck(entries, command.split("=", 1)[1], {7: PASSWORD})
    assert final == "OK"
    report = wire.parse_report_line(lines[0], wire.AT_PREFIX)
    assert report.ok and report.version == "TLSv1.2"
    lines, _ = at_tlscheck(entries, command.split("=", 1)[1])
    missing = wire.parse_report_line(lines[0], wire.AT_PREFIX)
    assert missing.failure is Failure.KEY_PASSWORD_MISSING
    assert at_tlscheck(entries, "7,localhost,1") is None


def test_zephyr_shell_extension_with_nul_terminated_pem(pki, test_server):
    server, _ = test_server()
    entries = {
        (3, 1): pki.root + b"\x00",
        (3, 2): pki.client.cert + b"\x00",
        (3, 3): pki.client.key + b"\x00",
    }
    argv = wire.encode_shell(3, "localhost", server.port).split()[2:]
    (line,) = shell_tlscheck(entries, argv)
    report = wire.parse_report_line(line, wire.SHELL_PREFIX)
    assert report.ok, report.summary()
    assert report.accepted_as == "CN=device-1,O=provision tests"
    (usage,) = shell_tlscheck(entries, ["3"])
    assert usage.startswith("cred tlscheck: usage")


def test_expired_device_cert_named_from_the_device(pki, test_server):
    server, _ = test_server()
    entries = {(1, 0): pki.root, (1, 1): pki.expired_client.cert, (1, 2): pki.expired_client.key}
    report = device_check(entries, 1, "localhost", server.port)
    assert report.failure is Failure.CLIENT_CERT_REJECTED and "expired" in report.detail
