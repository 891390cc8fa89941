"""at-cmng driver against the at-cmng simulator, back to back in memory."""

from __future__ import annotations

import hashlib

import pytest
from dialect_helpers import LoopTransport

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.device import Device
from provision.dialects import at_cmng
from provision.dialects.at_cmng import AtCmngSession, ReplyReader, plan_write
from provision.errors import DeviceError, LinkError, PolicyError, StoreFull
from provision.sim.at_cmng import AtCmngModem, AtCmngOptions


def open_session(modem=None, **kw):
    modem = modem or AtCmngModem()
    transport = LoopTransport(modem, **kw)
    return AtCmngSession(transport, timeout=0.05, retries=1), modem, transport


def test_write_list_verify_read_delete(device_set):
    session, modem, _ = open_session()
    result = session.write(device_set)
    assert [(s.sec_tag, s.type) for s in result.written] == [
        (42, SlotType.ROOT_CA),
        (42, SlotType.CLIENT_CERT),
        (42, SlotType.CLIENT_KEY),
    ]
    listed = session.list()
    assert [(s.sec_tag, s.type) for s in listed] == [
        (42, SlotType.ROOT_CA),
        (42, SlotType.CLIENT_CERT),
        (42, SlotType.CLIENT_KEY),
    ]
    # The modem's digest covers exactly the bytes stored; the profile's stored forms agree.
    stored = modem.store.entries()
    for slot in device_set:
        form = session.profile.stored_forms(device_set)[slot.key]
        assert stored[(42, int(at_cmng.SLOT_TO_NRF[slot.type]))] == form
    assert Device(session, "loop").verify(device_set).ok
    assert session.read(42, SlotType.CLIENT_CERT) == device_set.get(42, SlotType.CLIENT_CERT).data
    with pytest.raises(PolicyError, match="cannot be read back"):
        session.read(42, SlotType.CLIENT_KEY)
    session.delete(42, SlotType.CLIENT_CERT)
    assert [(s.type) for s in session.list()] == [SlotType.ROOT_CA, SlotType.CLIENT_KEY]
    session.delete(42, None)
    assert session.list() == []
    # Modem-internal entries in reserved tags are listed by the modem but not by the driver.
    assert any(tag > 2**31 for tag, _ in modem._entries())


def test_cfun_restored_after_write_and_after_error(device_set, pki_material):
    modem = AtCmngModem(options=AtCmngOptions(cfun=1))
    session, modem, transport = open_session(modem)
    session.write(device_set)
    assert modem.cfun == 1
    assert b"AT+CFUN=4\r\n" in transport.sent and transport.sent.endswith(b"AT+CFUN=1\r\n")
    modem.options.capacity = 100  # next write: memory full
    bigger = CredentialSet.of([Slot(43, SlotType.ROOT_CA, Encoding.PEM, pki_material["root2_pem"])])
    with pytest.raises(StoreFull, match="515"):
        session.write(bigger)
    assert modem.cfun == 1


def test_wrong_mode_gives_518():
    modem = AtCmngModem(options=AtCmngOptions(cfun=1))
    _lines, _final = modem.execute("AT+CMEE=1")
    assert modem.execute('AT%CMNG=0,1,0,"-----BEGIN X-----\nAA\n-----END X-----\n"') == (
        [],
        "+CME ERROR: 518",
    )
    assert modem.execute("AT%CMNG=3,1,0") == ([], "+CME ERROR: 518")


def test_cme_errors_map_to_messages():
    session, _modem, _ = open_session()
    with pytest.raises(DeviceError, match=r"513 \(not found\)"):
        session.read(5, SlotType.ROOT_CA)
    with pytest.raises(DeviceError, match="513"):
        session.delete(5, SlotType.ROOT_CA)
    for code in (0, 23, 50, 60, 513, 514, 515, 518, 519, 520, 523, 527, 528):
        assert at_cmng.cme_message(code) != "undocumented error code"


def test_plain_error_without_cmee():
    modem = AtCmngModem()
    assert modem.execute("AT%CMNG=2,5,0") == ([], "ERROR")
    modem.execute("AT+CMEE=1")
    assert modem.execute("AT%CMNG=2,5,0") == ([], "+CME ERROR: 513")


def test_crlf_pem_stored_and_digested_as_sent():
    """Nordic's production installer sends CR LF PEM and checks the SHA-256 over it."""
    modem = AtCmngModem()
    modem.execute("AT+CMEE=1")
    pem = "-----BEGIN CERTIFICATE-----\r\nAAAA\r\n-----END CERTIFICATE-----\r\n"
    assert modem.execute(f'AT%CMNG=0,3,0,"{pem}"') == ([], "OK")
    assert modem.store.entries()[(3, 0)] == pem.encode()
    digest = hashlib.sha256(pem.encode()).hexdigest().upper()
    assert modem.execute("AT%CMNG=1,3,0") == ([f'%CMNG: 3,0,"{digest}"'], "OK")


def test_crlf_pem_refused_by_the_mfw_2_0_2_quirk_and_normalized_by_driver(device_set):
    modem = AtCmngModem(options=AtCmngOptions(crlf_invalid=True))
    modem.execute("AT+CMEE=1")
    crlf = '"-----BEGIN CERTIFICATE-----\r\nAAAA\r\n-----END CERTIFICATE-----\r\n"'
    assert modem.execute(f"AT%CMNG=0,3,0,{crlf}") == ([], "+CME ERROR: 527")
    slot = device_set.get(42, SlotType.CLIENT_CERT)
    crlf_slot = Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, slot.data.replace(b"\n", b"\r\n"))
    session, modem, _ = open_session(modem)
    session.write(CredentialSet.of([crlf_slot]))
    assert modem.store.entries()[(42, 1)] == slot.data


def test_malformed_content_527():
    modem = AtCmngModem()
    modem.execute("AT+CMEE=1")
    assert modem.execute('AT%CMNG=0,3,0,"not a pem"') == ([], "+CME ERROR: 527")
    assert modem.execute('AT%CMNG=0,3,3,"abc"') == ([], "+CME ERROR: 527")


def test_reserved_tag_refused():
    modem = AtCmngModem()
    modem.execute("AT+CMEE=1")
    pem = '"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"'
    assert modem.execute(f"AT%CMNG=0,2147483648,0,{pem}") == ([], "+CME ERROR: 514")
    assert modem.execute("AT%CMNG=3,4294967293,10") == ([], "+CME ERROR: 514")


def test_exists_519_when_firmware_does_not_overwrite(device_set, pki_material):
    modem = AtCmngModem(options=AtCmngOptions(write_overwrites=False))
    modem.execute("AT+CMEE=1")
    pem = device_set.get(42, SlotType.ROOT_CA).data.decode()
    assert modem.execute(f'AT%CMNG=0,42,0,"{pem}"') == ([], "OK")
    assert modem.execute(f'AT%CMNG=0,42,0,"{pem}"') == ([], "+CME ERROR: 519")
    # The driver deletes and writes again on such firmware.
    session, modem, transport = open_session(modem)
    session.write(device_set)
    assert b"AT%CMNG=3,42,0\r\n" in transport.sent
    assert Device(session, "loop").verify(device_set).ok


def test_rewrite_overwrites(device_set, pki_material):
    session, modem, _ = open_session()
    session.write(device_set)
    changed = CredentialSet.of(
        [Slot(42, SlotType.ROOT_CA, Encoding.PEM, pki_material["root2_pem"])]
    )
    session.write(changed)
    assert modem.store.entries()[(42, 0)] == pki_material["root2_pem"]


def test_a_clean_write_is_verified_by_its_own_check_and_not_swept_for_strays(device_set):
    session, _, transport = open_session()
    report = Device(session, "loop").provision(device_set, checked=())
    assert report.verified and report.unchanged == ()
    # One listing of the tag after the last write: the session's digest check is the job's
    # verify. Each entry went out once and is where it belongs: no stray can exist, and no
    # whole listing is read to look for one.
    after_writes = bytes(transport.sent[transport.sent.rindex(b"AT%CMNG=0,") :])
    assert after_writes.count(b"AT%CMNG=1,42\r\n") == 1
    assert b"AT%CMNG=1\r\n" not in after_writes


def test_a_job_sends_again_only_entries_whose_content_changed(device_set, pki_material):
    session, modem, transport = open_session()
    device = Device(session, "loop")
    device.provision(device_set, checked=())
    renewed = CredentialSet.of(
        [
            device_set.get(42, SlotType.ROOT_CA),
            Slot(42, SlotType.CLIENT_CERT, Encoding.PEM, pki_material["root2_pem"]),
            device_set.get(42, SlotType.CLIENT_KEY),
        ]
    )
    mark = len(transport.sent)
    report = device.provision(renewed, checked=())
    sent = bytes(transport.sent[mark:])
    assert report.unchanged == ((42, SlotType.ROOT_CA), (42, SlotType.CLIENT_KEY))
    assert [s.type for s in report.written] == [
        SlotType.ROOT_CA,
        SlotType.CLIENT_CERT,
        SlotType.CLIENT_KEY,
    ]
    assert b"AT%CMNG=0,42,1," in sent
    assert b"AT%CMNG=0,42,0," not in sent and b"AT%CMNG=0,42,2," not in sent
    # The unchanged entries are not deleted first; every other type is, listed or not.
    assert [line for line in sent.split(b"\r\n") if line.startswith(b"AT%CMNG=3,")] == [
        b"AT%CMNG=3,42,1",
        b"AT%CMNG=3,42,3",
        b"AT%CMNG=3,42,4",
    ]
    assert modem.store.entries()[(42, 1)] == pki_material["root2_pem"]
    assert device.verify(renewed).ok


def test_a_set_the_modem_holds_already_is_not_sent_again(device_set):
    session, _, transport = open_session()
    device = Device(session, "loop")
    device.provision(device_set, checked=())
    mark = len(transport.sent)
    report = device.provision(device_set, checked=())
    assert len(report.unchanged) == 3 and report.verified
    sent = bytes(transport.sent[mark:])
    assert b"AT%CMNG=0," not in sent
    assert not any(f"AT%CMNG=3,42,{t}\r".encode() in sent for t in range(3))


def test_encrypted_key_with_password(encrypted_set):
    session, modem, transport = open_session()
    session.write(encrypted_set)
    assert b',"s3cret-pass"\r\n' in transport.sent
    assert (7, 3) not in modem.store.entries()  # key_password is no entry of its own
    assert Device(session, "loop").verify(encrypted_set).ok


def test_wrong_password_refused_by_modem(pki_material):
    bad = CredentialSet.of(
        [
            Slot(7, SlotType.CLIENT_KEY, Encoding.PEM, pki_material["key_enc_pem"],
                 SlotFlags.ENCRYPTED),
            Slot(7, SlotType.KEY_PASSWORD, Encoding.RAW, b"wrong"),
        ]
    )  # fmt: skip
    session, _, _ = open_session()
    with pytest.raises(DeviceError, match="527"):
        session.write(bad)


def test_policy_errors_before_any_byte(pki_material, device_set):
    m = pki_material
    long_pw = CredentialSet.of(
        [
            Slot(7, SlotType.CLIENT_KEY, Encoding.PEM, m["key_enc_pem"], SlotFlags.ENCRYPTED),
            Slot(7, SlotType.KEY_PASSWORD, Encoding.RAW, b"x" * 33),
        ]
    )
    no_pw = CredentialSet.of(
        [Slot(7, SlotType.CLIENT_KEY, Encoding.PEM, m["key_enc_pem"], SlotFlags.ENCRYPTED)]
    )
    quoted = CredentialSet.of([Slot(9, SlotType.PSK_IDENTITY, Encoding.RAW, b'id"x')])
    huge = CredentialSet.of(
        [Slot(9, SlotType.ROOT_CA, Encoding.PEM, m["root_pem"]) for _ in range(1)]
        + [Slot(9, SlotType.CLIENT_CERT, Encoding.PEM, m["cert_pem"] * 8)]
    )
    for bad, message in [
        (long_pw, "at most 32"),
        (no_pw, "no key_password"),
        (quoted, "double quote"),
        (huge, "silently drops"),
    ]:
        session, _, transport = open_session()
        sent_before = len(transport.sent)
        with pytest.raises(PolicyError, match=message):
            session.write(bad)
        assert len(transport.sent) == sent_before


def test_several_roots_in_one_tag_become_one_entry(pki_material):
    m = pki_material
    roots = CredentialSet.of(
        [
            Slot(50, SlotType.ROOT_CA, Encoding.PEM, m["root_pem"]),
            Slot(50, SlotType.ROOT_CA, Encoding.DER, m["root_der"]),
            Slot(50, SlotType.ROOT_CA, Encoding.PEM, m["root2_pem"]),
        ]
    )
    plans = plan_write(roots)
    assert len(plans) == 1 and plans[0].content.count(b"BEGIN CERTIFICATE") == 3
    session, _modem, _ = open_session()
    session.write(roots)
    assert Device(session, "loop").verify(roots).ok


def test_der_bundle_goes_as_pem(pki_material):
    m = pki_material
    der_set = CredentialSet.of(
        [
            Slot(11, SlotType.CLIENT_CERT, Encoding.DER, m["cert_der"]),
            Slot(11, SlotType.CLIENT_KEY, Encoding.DER, m["key_der"]),
        ]
    )
    session, modem, _ = open_session()
    session.write(der_set)
    stored = modem.store.entries()
    assert stored[(11, 1)] == m["cert_pem"]
    assert stored[(11, 2)].startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_psk_and_identity():
    psk_set = CredentialSet.of(
        [
            Slot(3, SlotType.PSK, Encoding.RAW, bytes(range(16))),
            Slot(3, SlotType.PSK_IDENTITY, Encoding.RAW, b"client-3"),
        ]
    )
    session, modem, _ = open_session()
    session.write(psk_set)
    assert modem.store.entries()[(3, 3)] == bytes(range(16)).hex().encode()
    assert Device(session, "loop").verify(psk_set).ok


def test_keygen_returns_csr():
    from cryptography import x509

    session, modem, _ = open_session(AtCmngModem(options=AtCmngOptions(cfun=1)))
    csr_der = session.keygen(77, "dev-77")
    csr = x509.load_der_x509_csr(csr_der)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=dev-77"
    assert (77, 2) in modem.store.entries()
    assert modem.cfun == 1
    default = x509.load_der_x509_csr(session.keygen(78))
    assert modem.options.uuid in default.subject.rfc4514_string()


def test_info_reports_imei_and_firmware():
    session, _, _ = open_session()
    info = session.info()
    assert info.dialect == "at-cmng"
    assert info.device_id == "352656100367872"
    assert info.firmware == "mfw_nrf91x1_2.0.2"
    assert info.details["model"] == "nRF9151-LACA"


def test_device_stops_answering_gives_link_error(device_set):
    modem = AtCmngModem()
    session, modem, transport = open_session(modem)
    transport.mute_after = len(transport.sent)
    with pytest.raises(LinkError, match="no reply"):
        session.write(device_set)


def test_garbage_and_echo_and_urcs_are_ignored(device_set):
    modem = AtCmngModem(options=AtCmngOptions(echo=True))
    session, modem, transport = open_session(modem)
    transport.inject = b'\x00\xff garbage line\r\n+CEREG: 2,"0A"\r\n'
    session.write(device_set)
    assert len(session.list()) == 3


def test_reply_reader_byte_by_byte_and_quoted_lines():
    content = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    sha = hashlib.sha256(content.encode()).hexdigest().upper()
    wire = f'noise\r\n%CMNG: 5,0,"{sha}","{content}"\r\nOK\r\n'.encode()
    for step in (1, 3, len(wire)):
        reader = ReplyReader(b"AT%CMNG=2,5,0\r\n", "%CMNG:")
        reply = None
        for i in range(0, len(wire), step):
            reply = reader.feed(wire[i : i + step]) or reply
        assert reply is not None and reply.ok
        entry, got = at_cmng.parse_read(reply.lines[0])
        assert (entry.sec_tag, entry.nrf_type) == (5, 0) and got == content.encode()
        assert entry.sha256 == hashlib.sha256(content.encode()).digest()


def test_partial_reply_then_silence_is_link_error():
    class Half(LoopTransport):
        def write(self, data):
            self.sent += data
            reply = self.device.receive_data(data)
            self.pending += reply[: len(reply) // 2] if b"CMNG=1" in data else reply

    modem = AtCmngModem()
    session = AtCmngSession(Half(modem), timeout=0.05, retries=1)
    with pytest.raises(LinkError):
        session.list()


def test_command_buffer_overflow_is_dropped_silently():
    modem = AtCmngModem()
    modem.execute("AT+CMEE=1")
    body = "A" * 5000
    reply = modem.receive_data(f'AT%CMNG=0,1,0,"{body}"\r\n'.encode())
    assert reply == b""  # the closing quote was dropped: the line end is still "in quotes"
    assert modem.dropped > 0


def test_probe():
    assert AtCmngSession.probe(LoopTransport(AtCmngModem()), 0.05)


def test_a_written_tag_holds_what_the_set_gives_it(device_set, pki_material):
    session, _, _ = open_session()
    session.write(device_set)
    session.write(
        CredentialSet.of([Slot(42, SlotType.ROOT_CA, Encoding.PEM, pki_material["root2_pem"])])
    )
    # The client_cert went with the rewrite of tag 42; the client_key stays (it may come
    # from keygen); the root is the new one.
    assert [s.type for s in session.list()] == [SlotType.ROOT_CA, SlotType.CLIENT_KEY]


def test_a_modem_left_inside_quotes_by_a_cut_command_is_resynchronised(device_set):
    modem = AtCmngModem()
    transport = LoopTransport(modem)  # the modem boots
    # The rest of a write cut by a power cut reaches the rebooted modem: an odd number of
    # `"`, so it now takes every line end as inside quotes.
    modem.receive_data(b'MIIB\n-----END CERTIFICATE-----\n"\r\n')
    session = AtCmngSession(transport, timeout=0.05, retries=1)
    session.write(device_set)
    assert Device(session, "loop").verify(device_set).ok
    assert b'"\r\nAT\r\n' in transport.sent  # the quote was closed before the retry


class Answering:
    """A modem whose every %CMNG=1 list is answered by `reply`; OK to anything else."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply

    def boot(self) -> bytes:
        return b""

    def receive_data(self, data: bytes) -> bytes:
        out = b""
        for line in data.split(b"\r\n")[:-1]:
            out += self.reply if line.startswith(b"AT%CMNG=1") else b"\r\nOK\r\n"
        return out


@pytest.mark.parametrize(
    "reply",
    [
        b"\r\n+CME ERROR: 527\r\n",
        b"\r\n%CMNG: garbled\r\nOK\r\n",
        b"\r\nERROR\r\n",
        b"\r\n+CME ERROR: 5113\r\n",
        b'\r\n%CLNG: 42,1,"' + b"AB" * 32 + b'"\r\nOK\r\n',
        b'\r\n%CMNG: 42,1,"' + b"AB" * 32 + b'"%CMNG: 42,2\r\nOK\r\n',
        b'\r\n%CMNG: 42,1,"' + b"AB" * 31 + b'XB"\r\nOK\r\n',
    ],
    ids=[
        "corruption-hint",
        "unparsable-line",
        "bare-error",
        "undocumented-code",
        "garbled-prefix",
        "two-entries-run-together",
        "garbled-digest",
    ],
)
def test_one_request_is_sent_at_most_retries_plus_one_times(reply):
    transport = LoopTransport(Answering(reply))
    session = AtCmngSession(transport, timeout=0.05, retries=3)
    with pytest.raises(DeviceError):
        session.list()
    assert transport.sent.count(b"AT%CMNG=1\r\n") == 4


def test_a_modem_error_reply_is_not_retried():
    transport = LoopTransport(Answering(b"\r\n+CME ERROR: 513\r\n"))
    session = AtCmngSession(transport, timeout=0.05, retries=3)
    with pytest.raises(DeviceError, match="513"):
        session.list()
    assert transport.sent.count(b"AT%CMNG=1\r\n") == 1


def test_reply_reader_memory_is_bounded_by_its_longest_line():
    reader = ReplyReader(b"AT%CMNG=1\r\n", "%CMNG:")
    for _ in range(200):
        assert reader.feed(b"x" * 1000) is None
        assert len(reader._buf) <= at_cmng.MAX_REPLY_LINE
    assert reader.overflows >= 1
    reply = reader.feed(b"\r\n%CMNG: 1,0\r\nOK\r\n")
    assert reply is not None and reply.ok and reply.lines == ("%CMNG: 1,0",)


A_SHA = "AB" * 32


@pytest.mark.parametrize(
    "line",
    [f'%CLNG: 42,1,"{A_SHA}"', f'%CMG: 42,1,"{A_SHA}"', f'x%CMNG: 42,1,"{A_SHA}"', "%CMNG;42,1"],
)
def test_a_listing_line_with_a_garbled_prefix_is_a_near_miss_not_noise(line):
    reader = ReplyReader(b"AT%CMNG=1\r\n", "%CMNG:")
    reply = reader.feed(f'\r\n%CMNG: 42,0,"{A_SHA}"\r\n{line}\r\nOK\r\n'.encode())
    assert reply is not None and reply.ok
    assert reply.near_misses == 1 and len(reply.lines) == 1


@pytest.mark.parametrize("line", ['+CEREG: 2,"0A"', "AT%CMNF=1", "\x00\xff garbage", "%XSIM: 1"])
def test_urcs_noise_and_a_garbled_echo_are_not_near_misses(line):
    reader = ReplyReader(b"AT%CMNG=1\r\n", "%CMNG:")
    reply = reader.feed(f"\r\n{line}\r\n%CMNG: 42,0\r\nOK\r\n".encode("latin-1"))
    assert reply is not None and reply.near_misses == 0 and reply.lines == ("%CMNG: 42,0",)


def test_a_listing_that_arrived_garbled_once_is_read_again_not_trusted_short(device_set):
    class GarbleFirstList(AtCmngModem):
        lists = 0

        def receive_data(self, data: bytes) -> bytes:
            out = super().receive_data(data)
            if data.startswith(b"AT%CMNG=1"):
                self.lists += 1
                if self.lists == 1:
                    out = out.replace(b"%CMNG: 42,1", b"%CMOG: 42,1")
            return out

    modem = GarbleFirstList()
    session, _, _ = open_session(modem)
    session.write(device_set)
    modem.lists = 0
    assert [s.type for s in session.list() if s.sec_tag == 42] == [
        SlotType.ROOT_CA,
        SlotType.CLIENT_CERT,
        SlotType.CLIENT_KEY,
    ]
    assert modem.lists == 2


class GarblesOneHeader(AtCmngModem):
    """A line that turns the first `AT%CMNG=0,42,2` into `AT%CMNG=0,4,2`: the modem stores
    the key under tag 4 and answers OK (AT carries no checksum)."""

    garbled = False

    def receive_data(self, data: bytes) -> bytes:
        if not self.garbled and data.startswith(b"AT%CMNG=0,42,2,"):
            self.garbled = True
            data = b"AT%CMNG=0,4,2," + data[len(b"AT%CMNG=0,42,2,") :]
        return super().receive_data(data)


def test_a_key_the_line_stored_under_another_tag_is_deleted_and_said(device_set, pki_material):
    modem = GarblesOneHeader()
    session, _, _ = open_session(modem)
    # The owner's own copy of the same root under tag 43, there before: not a stray.
    session.write(
        CredentialSet.of([Slot(43, SlotType.ROOT_CA, Encoding.PEM, pki_material["root_pem"])])
    )
    report = Device(session, "loop").provision(device_set)
    assert modem.garbled and report.strays_deleted == ((4, SlotType.CLIENT_KEY),)
    held = {(s.sec_tag, s.type) for s in session.list()}
    assert (4, SlotType.CLIENT_KEY) not in held and (43, SlotType.ROOT_CA) in held
    assert {(42, t) for t in (SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY)} <= held


def test_a_stray_that_cannot_be_deleted_fails_the_job_and_names_it(device_set):
    from provision.errors import ExitCode, StrayLeft

    class KeepsTheStray(GarblesOneHeader):
        def receive_data(self, data: bytes) -> bytes:
            if data.startswith(b"AT%CMNG=3,4,"):
                return b"\r\nERROR\r\n"  # the delete never takes
            return super().receive_data(data)

    session, _, _ = open_session(KeepsTheStray())
    with pytest.raises(StrayLeft) as left:
        Device(session, "loop").provision(device_set)
    assert left.value.exit_code == ExitCode.DEVICE and left.value.code == "device.stray_left"
    assert "sec_tag 4 client_key" in left.value.message and "BEGIN" not in left.value.message
    assert (4, SlotType.CLIENT_KEY) in {(s.sec_tag, s.type) for s in session.list()}
