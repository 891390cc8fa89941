"""Any bytes, whole or split anywhere: readers return a reply or keep waiting, and the
simulated devices answer or stay quiet — neither raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provision.dialects.at_cmng import ReplyReader
from provision.dialects.zephyr_shell import ShellReader
from provision.sim.at_cmng import AtCmngModem, AtCmngOptions
from provision.sim.zephyr_shell import ZephyrShellDevice

ALPHABET = st.sampled_from(
    [b"\r", b"\n", b'"', b",", b"OK", b"ERROR", b"+CME ERROR: 513", b"%CMNG: 1,0,", b"AT",
     b"%CMNG=", b"cred ", b"buf ", b"add ", b"list", b"uart:~$ ", b"\x1b[1;31m", b"\x00",
     b"\xff", b"1", b"QUJD", b" ", b"\x08", b"\x03"]
)  # fmt: skip
WIRE = st.lists(st.one_of(ALPHABET, st.binary(max_size=8)), max_size=40).map(b"".join)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in [*points, len(data)]:
        out.append(data[last:p])
        last = p
    return out


@settings(max_examples=300, deadline=None)
@given(WIRE, st.lists(st.integers(0, 400), max_size=6))
def test_at_reply_reader_never_raises(data, cuts):
    whole = ReplyReader(b"AT%CMNG=1\r\n", "%CMNG:").feed(data)
    reader = ReplyReader(b"AT%CMNG=1\r\n", "%CMNG:")
    split = None
    for piece in chunks(data, cuts):
        split = split or reader.feed(piece)
    assert (whole is None) == (split is None)
    if whole is not None:
        assert whole == split


@settings(max_examples=300, deadline=None)
@given(WIRE, st.lists(st.integers(0, 400), max_size=6))
def test_shell_reader_never_raises(data, cuts):
    reader = ShellReader(b"cred list\r\n")
    for piece in chunks(data, cuts):
        reader.feed(piece)


@settings(max_examples=200, deadline=None)
@given(WIRE, st.booleans())
def test_simulated_modem_never_raises(data, cmee):
    modem = AtCmngModem(options=AtCmngOptions(cfun=4), keygen=lambda attrs: (b"k", b"c"))
    if cmee:
        modem.execute("AT+CMEE=1")
    out = modem.receive_data(data)
    assert isinstance(out, bytes)


@settings(max_examples=200, deadline=None)
@given(WIRE)
def test_simulated_shell_never_raises(data):
    device = ZephyrShellDevice()
    device.boot()
    assert isinstance(device.receive_data(data), bytes)


def test_keygen_public_key_response_and_failure():
    modem = AtCmngModem(options=AtCmngOptions(cfun=4))
    modem.execute("AT+CMEE=1")
    lines, final = modem.execute("AT%KEYGEN=5,2,1")
    assert final == "OK" and lines[0].startswith('%KEYGEN: "MFkw')  # SubjectPublicKeyInfo
    broken = AtCmngModem(options=AtCmngOptions(cfun=4), keygen=lambda attrs: (b"k", b"c"))
    broken.execute("AT+CMEE=1")
    assert broken.execute("AT%KEYGEN=5,2,1") == ([], "+CME ERROR: 523")
