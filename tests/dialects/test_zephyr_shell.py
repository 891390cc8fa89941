"""zephyr-shell driver against the Zephyr shell simulator, back to back in memory."""

from __future__ import annotations

import base64
import hashlib

import pytest
from dialect_helpers import LoopTransport

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.device import Device
from provision.dialects.zephyr_shell import ShellReader, ZephyrShellSession, parse_list, plan_write
from provision.errors import DeviceError, LinkError, PolicyError, StoreFull
from provision.sim.zephyr_shell import ZephyrShellDevice, ZephyrShellOptions


def open_session(device=None, **kw):
    device = device or ZephyrShellDevice()
    transport = LoopTransport(device)
    return ZephyrShellSession(transport, timeout=0.05, retries=1, **kw), device, transport


def test_write_list_verify_read_delete(device_set):
    session, device, transport = open_session()
    result = session.write(device_set)
    assert len(result.written) == 3
    listed = session.list()
    assert [(s.sec_tag, s.type) for s in listed] == [
        (42, SlotType.ROOT_CA),
        (42, SlotType.CLIENT_CERT),
        (42, SlotType.CLIENT_KEY),
    ]
    stored = device.store.entries()
    cert = device_set.get(42, SlotType.CLIENT_CERT)
    # bint: the device keeps the PEM plus a NUL, and its digest is base64(SHA-256) of that.
    assert stored[(42, 2)] == cert.data + b"\x00"
    assert session.profile.stored_forms(device_set)[cert.key] == stored[(42, 2)]
    assert listed[1].sha256 == hashlib.sha256(cert.data + b"\x00").digest()
    assert Device(session, "loop").verify(device_set).ok
    assert session.read(42, SlotType.CLIENT_CERT) == cert.data
    with pytest.raises(PolicyError):
        session.read(42, SlotType.CLIENT_KEY)
    # Every `cred buf` line fits the shell's command buffer.
    assert max(len(x) for x in bytes(transport.sent).split(b"\r\n")) < 256
    session.delete(42, SlotType.CLIENT_KEY)
    assert [s.type for s in session.list()] == [SlotType.ROOT_CA, SlotType.CLIENT_CERT]
    session.delete(None, None)
    assert session.list() == []


def test_rewrite_deletes_then_adds(device_set):
    session, _device, transport = open_session()
    session.write(device_set)
    session.write(device_set)
    assert b"cred del 42 CA_CERT\r\n" in transport.sent
    assert Device(session, "loop").verify(device_set).ok


def test_no_keygen_says_so():
    session, _, _ = open_session()
    with pytest.raises(PolicyError, match="no keygen"):
        session.keygen(1)


def test_encrypted_key_and_password_refused_before_anything_is_sent(encrypted_set):
    session, _, transport = open_session()
    before = len(transport.sent)
    with pytest.raises(PolicyError, match="password-encrypted"):
        session.write(encrypted_set)
    assert len(transport.sent) == before


def test_too_big_for_cred_buffer_refused_before_sending(pki_material):
    big = CredentialSet.of(
        [Slot(1, SlotType.CLIENT_CERT, Encoding.PEM, pki_material["cert_pem"] * 2)]
    )
    session, _, transport = open_session()
    before = len(transport.sent)
    with pytest.raises(PolicyError, match="CRED_BUF_SIZE"):
        session.write(big)
    assert len(transport.sent) == before


def test_device_buffer_smaller_than_driver_assumes(device_set):
    device = ZephyrShellDevice(options=ZephyrShellOptions(cred_buf_size=300))
    session, device, _ = open_session(device)
    with pytest.raises(DeviceError, match="Not enough room in credential buffer"):
        session.write(device_set)


def test_memory_full(device_set):
    device = ZephyrShellDevice(options=ZephyrShellOptions(max_credentials=2))
    session, device, _ = open_session(device)
    with pytest.raises(StoreFull, match="Error: -12") as full:
        session.write(device_set)
    assert full.value.code == "device.store_full"


def test_over_long_line_gives_rx_ring_buffer_full(device_set):
    session, _device, _ = open_session(chunk_chars=400)
    with pytest.raises(LinkError, match="RX ring buffer full"):
        session.write(device_set)


def test_psk_and_identity():
    psk = CredentialSet.of(
        [
            Slot(3, SlotType.PSK, Encoding.RAW, bytes(range(16))),
            Slot(3, SlotType.PSK_IDENTITY, Encoding.RAW, b"client-3"),
        ]
    )
    session, device, _ = open_session()
    session.write(psk)
    assert device.store.entries()[(3, 4)] == bytes(range(16))
    assert device.store.entries()[(3, 5)] == b"client-3"
    assert Device(session, "loop").verify(psk).ok


def test_several_roots_one_credential(pki_material):
    m = pki_material
    roots = CredentialSet.of(
        [
            Slot(5, SlotType.ROOT_CA, Encoding.PEM, m["root_pem"]),
            Slot(5, SlotType.ROOT_CA, Encoding.PEM, m["root2_pem"]),
        ]
    )
    (plan,) = plan_write(roots, cred_buf_size=4096)
    assert plan.stored.count(b"BEGIN CERTIFICATE") == 2 and plan.stored.endswith(b"\n\x00")
    # Two certificates outgrow the default 1024-byte shell buffer; such devices raise
    # CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE, and the driver is told.
    device = ZephyrShellDevice(options=ZephyrShellOptions(cred_buf_size=4096))
    session, _, _ = open_session(device, cred_buf_size=4096)
    session.write(roots)
    assert Device(session, "loop").verify(roots).ok


def test_not_found_errors():
    session, _, _ = open_session()
    with pytest.raises(DeviceError, match="not found"):
        session.delete(9, SlotType.ROOT_CA)
    with pytest.raises(DeviceError, match="not found"):
        session.read(9, SlotType.ROOT_CA)


def test_info():
    session, _, _ = open_session()
    info = session.info()
    assert (info.dialect, info.device_id, info.firmware) == (
        "zephyr-shell",
        "5a3f09c27e4d11b8",
        "Zephyr version 3.7.0",
    )


def test_stops_answering_is_link_error(device_set):
    session, _, transport = open_session()
    transport.mute_after = len(transport.sent)
    with pytest.raises(LinkError, match="no prompt"):
        session.write(device_set)


def test_noise_and_no_colours(device_set):
    device = ZephyrShellDevice(options=ZephyrShellOptions(vt100=False, echo=False))
    session, device, transport = open_session(device)
    transport.inject = b"\x1b[1;33m<inf> net: link up\x1b[0m\r\n"
    session.write(device_set)
    assert len(session.list()) == 3


def test_shell_reader_byte_by_byte():
    digest = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
    wire = (
        f"cred list\r\n\x1b[1;31mjunk\x1b[0m\r\n1,CA,{digest},0\r\n1 credentials found.\r\n"
        "\x1b[1;32muart:~$ \x1b[0m"
    ).encode()
    for step in (1, 7, len(wire)):
        reader = ShellReader(b"cred list\r\n")
        lines = None
        for i in range(0, len(wire), step):
            lines = reader.feed(wire[i : i + step]) or lines
        assert lines is not None
        (cred,) = parse_list(lines)
        assert cred.digest == hashlib.sha256(b"x").digest()


def test_sim_messages_follow_zephyr_source():
    device = ZephyrShellDevice(options=ZephyrShellOptions(vt100=False))
    assert device.execute(["cred", "buf", "QUJD"]) == ["Stored 4 bytes."]
    assert device.execute(["cred", "add", "1", "CA", "DEFAULT", "bint"]) == [
        "Added TLS credential of type CA_CERT, sectag 1, and length 4 bytes.",
        "Credential buffer cleared.",
    ]
    assert device.execute(["cred", "add", "1", "CA_CERT", "DEFAULT", "bin", "QUJD"]) == [
        "Stored 4 bytes.",
        "TLS credential with sectag 1 and type CA_CERT already exists.",
        "Credential buffer cleared.",
    ]
    assert device.execute(["cred", "del", "1", "PK"]) == [
        "There is no TLS credential with sectag 1 and type PRIVATE_KEY."
    ]
    assert device.execute(["cred", "add", "x", "CA", "DEFAULT", "bin", "QUJD"]) == [
        "x is not a valid sectag."
    ]
    assert device.execute(["cred", "get", "1", "CA", "bint"]) == [
        "QUJD",
        "Credential buffer cleared.",
    ]
    assert device.execute(["cred", "list"])[-1] == "1 credentials found."
    assert device.execute(["bogus"]) == ["bogus: command not found"]


def test_probe():
    from provision.dialects.at_cmng import AtCmngSession
    from provision.sim.at_cmng import AtCmngModem

    assert ZephyrShellSession.probe(LoopTransport(ZephyrShellDevice()), 0.05)
    assert not ZephyrShellSession.probe(LoopTransport(AtCmngModem()), 0.05)
    assert not AtCmngSession.probe(LoopTransport(ZephyrShellDevice()), 0.05)


def test_a_written_tag_holds_what_the_set_gives_it(device_set, pki_material):
    session, _, _ = open_session()
    session.write(device_set)
    session.write(
        CredentialSet.of([Slot(42, SlotType.ROOT_CA, Encoding.PEM, pki_material["root2_pem"])])
    )
    # The client_cert went with the rewrite of tag 42; the client_key stays (it may come
    # from keygen); the root is the new one.
    assert [s.type for s in session.list()] == [SlotType.ROOT_CA, SlotType.CLIENT_KEY]


class GarbledLister:
    """A shell whose every `cred list` output is garbled (its count line never comes)."""

    def boot(self) -> bytes:
        return b"uart:~$ "

    def receive_data(self, data: bytes) -> bytes:
        out = b""
        for text in data.split(b"\r\n")[:-1]:
            reply = b"1,CA,??\r\n" if text == b"cred list" else b""
            out += text + b"\r\n" + reply + b"uart:~$ "
        return out


def test_a_garbled_listing_is_asked_again_at_most_retries_plus_one_times():
    transport = LoopTransport(GarbledLister())
    session = ZephyrShellSession(transport, timeout=0.05, retries=3)
    with pytest.raises(DeviceError):
        session.list()
    assert transport.sent.count(b"cred list\r\n") == 4
