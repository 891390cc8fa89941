"""at-shell driver against the at-shell simulator (a Zephyr shell with NCS's `at` command in
front of the at-cmng modem simulator), back to back in memory and through sim://."""

from __future__ import annotations

import hashlib

import pytest
from dialect_helpers import LoopTransport
from hypothesis import given
from hypothesis import strategies as st

import provision.device
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.device import Device
from provision.dialects import at_cmng
from provision.dialects.at_shell import AtShellSession, fit_probe_line, shell_line, strip_echo
from provision.errors import DeviceError, LinkError, PolicyError, StoreFull
from provision.sim.at_cmng import PASSWD_TYPE, AtCmngOptions
from provision.sim.at_shell import AtShellDevice, AtShellOptions, make_argv
from provision.sim.serve import build_runner
from provision.sim.zephyr_shell import ZephyrShellDevice

BIG = 4096  # CONFIG_SHELL_CMD_BUFF_SIZE of a board built to take certificates through `at`


def open_session(shell=None, modem=None, *, cmd_buff_size=None, **kw):
    device = AtShellDevice(options=AtShellOptions(**(shell or {})), modem_options=modem)
    transport = LoopTransport(device, **kw)
    session = AtShellSession(transport, timeout=0.05, retries=1, cmd_buff_size=cmd_buff_size)
    return session, device, transport


def test_write_list_verify_read_delete_keygen(device_set):
    from cryptography import x509

    session, device, transport = open_session({"cmd_buff_size": BIG})
    result = session.write(device_set)
    assert [(s.sec_tag, s.type) for s in result.written] == [
        (42, SlotType.ROOT_CA),
        (42, SlotType.CLIENT_CERT),
        (42, SlotType.CLIENT_KEY),
    ]
    # Through the shell the modem stores exactly what the plain AT interface stores: LF-only
    # PEM (the shell decoded \x0a itself), so at-cmng's stored forms and digests hold.
    stored = device.modem.store.entries()
    for slot in device_set:
        form = session.profile.stored_forms(device_set)[slot.key]
        assert b"\r" not in form
        assert stored[(42, int(at_cmng.SLOT_TO_NRF[slot.type]))] == form
    assert Device(session, "loop").verify(device_set).ok
    assert b"at 'AT%CMNG=0,42,0,\"-----BEGIN CERTIFICATE-----\\x0a" in transport.sent
    assert session.read(42, SlotType.CLIENT_CERT) == device_set.get(42, SlotType.CLIENT_CERT).data
    csr = x509.load_der_x509_csr(session.keygen(43, "dev-43"))
    assert csr.is_signature_valid and csr.subject.rfc4514_string() == "CN=dev-43"
    session.delete(42, SlotType.CLIENT_CERT)
    assert [(s.sec_tag, s.type) for s in session.list()] == [
        (42, SlotType.ROOT_CA),
        (42, SlotType.CLIENT_KEY),
        (43, SlotType.CLIENT_KEY),
    ]
    session.delete(42, None)
    assert [s.sec_tag for s in session.list()] == [43]
    info = session.info()
    assert (info.dialect, info.device_id) == ("at-shell", device.modem.options.imei)


def test_encrypted_key_with_password(encrypted_set):
    session, device, transport = open_session({"cmd_buff_size": BIG})
    session.write(encrypted_set)
    assert Device(session, "loop").verify(encrypted_set).ok
    assert device.modem.store.entries()[(7, PASSWD_TYPE)] == b"s3cret-pass"
    assert b',"s3cret-pass"\'\r\n' in transport.sent
    wrong = CredentialSet.of(
        [
            *[s for s in encrypted_set if s.type is not SlotType.KEY_PASSWORD],
            Slot(7, SlotType.KEY_PASSWORD, Encoding.RAW, b"wrong-pass"),
        ]
    )
    with pytest.raises(DeviceError, match="527"):
        session.write(wrong)


def test_too_long_credential_refused_before_anything_is_written(device_set):
    # Zephyr's default 256-byte command buffer: no certificate line fits.
    session, device, transport = open_session()
    before = len(transport.sent)
    with pytest.raises(PolicyError, match="CONFIG_SHELL_CMD_BUFF_SIZE must be at least"):
        session.write(device_set)
    sent = bytes(transport.sent[before:])
    assert b"AT%CMNG=0" not in sent and b"AT+CFUN" not in sent
    assert device.modem.store.entries() == {}
    # The driver asked with one padded harmless line, which the shell cut short.
    assert sent.count(b"'AT'") >= 1
    # Told the buffer size, it refuses without asking the device at all.
    session, device, transport = open_session(cmd_buff_size=512)
    before = len(transport.sent)
    with pytest.raises(PolicyError, match="holds 512 bytes"):
        session.write(device_set)
    assert transport.sent[before:] == b""


def test_short_credentials_fit_the_default_buffer():
    psk = CredentialSet.of(
        [
            Slot(3, SlotType.PSK, Encoding.RAW, bytes(range(16))),
            Slot(3, SlotType.PSK_IDENTITY, Encoding.RAW, b"client-3"),
        ]
    )
    session, device, _ = open_session()
    session.write(psk)
    assert device.modem.store.entries()[(3, 3)] == bytes(range(16)).hex().encode()
    assert Device(session, "loop").verify(psk).ok


def test_an_overlong_line_never_reaches_the_modem():
    """Zephyr drops what does not fit the command buffer; the closing quote goes with it, so
    the shell refuses the line (`not terminated`) instead of passing half a credential."""
    device = AtShellDevice(options=AtShellOptions(cmd_buff_size=64, vt100=False))
    device.boot()
    pem = b"-----BEGIN CERTIFICATE-----\n" + b"A" * 100 + b"\n-----END CERTIFICATE-----\n"
    line = shell_line(b'AT%CMNG=0,1,0,"' + pem + b'"')
    out = device.receive_data(line)
    assert b"not terminated: '" in out
    assert device.modem.store.entries() == {}
    # The echo shows only what the buffer kept (63 characters: one byte is the terminator).
    assert out.startswith(line[:63])


def test_a_keygen_line_the_shell_cuts_is_a_link_error():
    """AT%KEYGEN is sent once (a second one would replace the key); a subject too long for
    the command buffer comes back as the shell's `not terminated`, which is reported."""
    session, device, _ = open_session({"cmd_buff_size": 64})
    with pytest.raises(LinkError, match="lost the end of the"):
        session.keygen(43, "x" * 80)
    assert device.modem.store.entries() == {}


@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=200))
def test_shell_quoting_round_trips_through_zephyrs_tokenizer(text):
    command = text.encode("ascii")
    line = shell_line(command).decode("ascii")
    assert "\n" not in line[:-2] and "\r" not in line[:-2]
    assert make_argv(line[:-2]) == (["at", text], "")


def test_make_argv_follows_zephyr_shell_utils():
    assert make_argv("at AT+CFUN?") == (["at", "AT+CFUN?"], "")
    assert make_argv("at 'a b' \"c'd\"") == (["at", "a b", "c'd"], "")
    assert make_argv(r"at 'it\'s' a\ b") == (["at", "it's", "a b"], "")
    # \n is no escape of the shell: it reaches `at` as two characters (what
    # CONFIG_AT_SHELL_UNESCAPE_LF and nrfcredstore's shell mode rely on).
    assert make_argv(r"at 'x\ny'") == (["at", "x\\ny"], "")
    assert make_argv(r"at '\x0a\0101\x4'") == (["at", "\nA\x04"], "")
    assert make_argv("at 'AT%CMNG=0") == (["at", "AT%CMNG=0"], "'")


def test_unescape_lf_stores_crlf():
    """CONFIG_AT_SHELL_UNESCAPE_LF turns \\n into CR LF (at_shell.c), so the modem stores CR LF
    line ends, which mfw 2.0.2 refuses with 527 (field report); the driver's \\x0a does not."""
    cmd = "at 'AT%CMNG=0,5,0,\"-----BEGIN CERTIFICATE-----\\nAB\\n-----END CERTIFICATE-----\"'"
    for crlf_invalid, expected in ((False, b"OK"), (True, b"+CME ERROR: 527")):
        device = AtShellDevice(
            options=AtShellOptions(unescape_lf=True, vt100=False),
            modem_options=AtCmngOptions(crlf_invalid=crlf_invalid),
        )
        device.boot()
        device.receive_data(b"at AT+CMEE=1\r\n")
        assert expected in device.receive_data(cmd.encode() + b"\r\n")
    assert device.modem.store.entries() == {}


def test_cme_errors_mapped_and_nothing_leaks(device_set, pki_material):
    session, device, _ = open_session({"cmd_buff_size": BIG})
    with pytest.raises(DeviceError, match=r"513 \(not found\)") as err:
        session.read(5, SlotType.ROOT_CA)
    assert err.value.code == "at.cme.513"
    device.modem.options.capacity = 100
    with pytest.raises(StoreFull, match=r"515 \(memory full") as err:
        session.write(device_set)
    assert "PRIVATE KEY" not in str(err.value) and "BEGIN" not in str(err.value)
    device.modem.options.capacity = 1 << 16
    device.modem.options.pofwarn = True
    with pytest.raises(DeviceError, match="528"):
        session.write(device_set)


def test_cfun_restored_around_changes(device_set):
    session, device, transport = open_session({"cmd_buff_size": BIG}, AtCmngOptions(cfun=1))
    session.write(device_set)
    assert device.modem.cfun == 1
    assert b"at 'AT+CFUN=4'\r\n" in transport.sent and transport.sent.endswith(b"'AT+CFUN=1'\r\n")


def test_shell_level_failures_are_named():
    # A reply longer than CONFIG_AT_SHELL_CMD_RESPONSE_MAX_LEN: the shell prints -E2BIG.
    session, _, _ = open_session({"response_max_len": 200})
    with pytest.raises(DeviceError, match="CONFIG_AT_SHELL_CMD_RESPONSE_MAX_LEN"):
        session.list()  # the modem's own three entries make ~270 characters
    # Shell wildcards on: `AT+CFUN?` never reaches `at`; nothing is changed.
    session, device, _ = open_session({"wildcard": True})
    psk = CredentialSet.of([Slot(3, SlotType.PSK, Encoding.RAW, b"\x01" * 8)])
    with pytest.raises(DeviceError, match="CONFIG_SHELL_WILDCARD") as err:
        session.write(psk)
    assert err.value.code == "at-shell.wildcard"
    assert device.modem.store.entries() == {}
    # A Zephyr shell without `at` (no CONFIG_AT_SHELL).
    with pytest.raises(DeviceError, match="CONFIG_AT_SHELL"):
        AtShellSession(LoopTransport(ZephyrShellDevice()), timeout=0.05, retries=0)


@pytest.mark.parametrize("shell", [{"echo": False}, {"terminal_width": 0}, {"vt100": False}])
def test_echo_and_colour_variants(shell, device_set):
    session, _, _ = open_session({"cmd_buff_size": BIG, **shell})
    session.write(device_set)
    assert Device(session, "loop").verify(device_set).ok


def test_wrapped_echo_is_removed():
    sent = b"at 'AT%CMNG=0,1,0,\"-----BEGIN X-----\\x0aAAAA\\x0a-----END X-----\"'"
    rows = ["at 'AT%CMNG=0,1,0,\"-----BEGIN", "X-----\\x0aAAAA\\x0a---", "--END X-----\"'", "OK"]
    assert strip_echo(rows, sent) == ["OK"]
    assert strip_echo(['%CMNG: 1,0,"AB"', "OK"], b"at AT%CMNG=1") == ['%CMNG: 1,0,"AB"', "OK"]
    assert len(fit_probe_line(300)) == 302


def test_device_that_stops_answering(device_set):
    from provision.errors import LinkError

    session, _, transport = open_session({"cmd_buff_size": BIG}, mute_after=None)
    transport.mute_after = len(transport.sent) + 900
    with pytest.raises(LinkError, match="no prompt"):
        session.write(device_set)


def test_over_sim_url_auto_probe_and_persistence(device_set, tmp_path):
    flash = tmp_path / "modem.flash"
    url = f"sim://at-shell?cmd_buff_size={BIG}&flash={flash}&baud=115200"
    with provision.device.open(url, timeout=1.0, retries=1) as dev:
        assert dev.dialect == "at-shell"  # auto: native, at-cmng, zephyr-shell said no
        result = dev.write(device_set)
        assert dev.verify(device_set).ok
        assert dev.session._transport.clock() >= result.bytes_sent / 11520
    with provision.device.open(url, dialect="at-shell", timeout=1.0, retries=1) as dev:
        assert dev.verify(device_set).ok
    # The at-shell probe never claims the other simulated devices (it runs last anyway).
    for kind in ("at-cmng", "zephyr-shell"):
        with provision.device.open(f"sim://{kind}", timeout=1.0, retries=1) as dev:
            assert dev.dialect == kind


def test_sim_cli_options_build_a_runner():
    # What `provision sim --dialect at-shell` passes, plus shell and modem options together.
    options = {"profile": "default", "baud": "115200", "flip": "0.0", "seed": "3"}
    runner = build_runner("at-shell", {**options, "cmd_buff_size": "1024", "cfun": "1"})
    device = runner.device
    assert device.options.cmd_buff_size == 1024 and device.modem.cfun == 1
    from provision.errors import InputError

    with pytest.raises(InputError, match="unknown at-shell sim option 'bogus'"):
        build_runner("at-shell", {"bogus": "1"})


def test_digest_is_over_what_was_sent(device_set):
    session, device, _ = open_session({"cmd_buff_size": BIG})
    session.write(device_set)
    for (tag, kind), data in device.modem.store.entries().items():
        if kind in at_cmng.NRF_TO_SLOT:
            slot = at_cmng.NRF_TO_SLOT[kind]
            listed = {(s.sec_tag, s.type): s.sha256 for s in session.list()}
            assert listed[(tag, slot)] == hashlib.sha256(data).digest()


def test_noisy_line_ends_in_success_or_a_clear_error(device_set, tmp_path):
    from provision.errors import ProvisionError

    outcomes: dict[str, int] = {}
    for seed in range(12):
        flash = tmp_path / f"{seed}.flash"
        url = f"sim://at-shell?cmd_buff_size={BIG}&flip=0.0003&drop=0.0003&seed={seed}"
        try:
            with provision.device.open(
                f"{url}&flash={flash}", dialect="at-shell", timeout=0.3, retries=3
            ) as dev:
                dev.write(device_set)
        except ProvisionError as err:
            # One line, never credential bytes (a garbled echo carries PEM text).
            assert "BEGIN" not in str(err) and "\n" not in str(err) and "\\x0a" not in str(err)
            outcomes[type(err).__name__] = outcomes.get(type(err).__name__, 0) + 1
            continue
        outcomes["ok"] = outcomes.get("ok", 0) + 1
        # A write that returned holds: checked over a clean line (a noisy `list` can lose a
        # line of its own, which no AT reply protects).
        url = f"sim://at-shell?cmd_buff_size={BIG}&flash={flash}"
        with provision.device.open(url, dialect="at-shell", timeout=0.3) as dev:
            assert dev.verify(device_set).ok, seed
    assert outcomes.get("ok", 0) >= 6, outcomes


def test_cli_write_and_a_refusal_with_its_exit_code(cli, tmp_path):
    import json
    from pathlib import Path

    from provision.errors import ExitCode

    fixtures = Path(__file__).resolve().parents[1] / "vectors" / "fixtures"
    items = ["--tag", "42", "--root-ca", fixtures / "root-ca.pem", "--client-cert",
             fixtures / "device.pem", "--client-key", fixtures / "device.key"]  # fmt: skip
    port = f"sim://at-shell?cmd_buff_size={BIG}&flash={tmp_path / 'dev.flash'}"
    result = cli(["device", "write", *items, "--port", port, "--timeout", "0.5", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["dialect"] == "at-shell" and out["verified"]
    # The default shell buffer: a clear one-line refusal, nothing on the device.
    port = f"sim://at-shell?flash={tmp_path / 'small.flash'}"
    result = cli(["device", "write", *items, "--port", port, "--dialect", "at-shell",
                  "--timeout", "0.5"])  # fmt: skip
    assert result.exit_code == ExitCode.POLICY, result.output
    assert "CONFIG_SHELL_CMD_BUFF_SIZE" in result.output and "Traceback" not in result.output
    result = cli(["device", "list", "--port", port, "--dialect", "at-shell", "--json"])
    assert result.exit_code == 0 and "root_ca" not in result.output
