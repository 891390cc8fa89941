"""The text and field forms a TLS check travels in (simulator extensions, native message)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from provision.errors import InputError
from provision.tls import wire
from provision.tls.report import Failure, HandshakeReport

REPORT = HandshakeReport(
    "localhost:8443",
    Failure.NONE,
    version="TLSv1.3",
    cipher="TLS_AES_256_GCM_SHA384",
    server_chain=('CN=localhost,O=a "quoted"\\, name', "CN=Root"),
    server_verified=True,
    client_accepted=True,
    accepted_as="CN=device-1",
    evidence="the server greeted us with our subject",
    sec_tag=42,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("localhost:8443", ("localhost", 8443)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]:443", ("::1", 443)),
    ],
)
def test_parse_server(text, expected):
    assert wire.parse_server(text) == expected


@pytest.mark.parametrize("text", ["localhost", "localhost:0", "a b:1", ":80", 'x",1:80', "h:99999"])
def test_parse_server_refuses(text):
    with pytest.raises(InputError):
        wire.parse_server(text)


def test_at_command_round_trip():
    command = wire.encode_at(42, "localhost", 8443, "1.3")
    assert command == 'AT#XTLSCHECK=42,"localhost",8443,13'
    assert wire.parse_at_args(command.split("=", 1)[1]) == (42, "localhost", 8443, "1.3")
    assert wire.parse_at_args('7,"h",1') == (7, "h", 1, None)
    for bad in ("7,h,1", '7,"h"', '7,"h",1,11', '"7","h",1'):
        with pytest.raises(InputError):
            wire.parse_at_args(bad)


def test_shell_command_round_trip():
    command = wire.encode_shell(42, "localhost", 8443, "1.2")
    assert command == "cred tlscheck 42 localhost 8443 12"
    assert wire.parse_shell_args(command.split()[2:]) == (42, "localhost", 8443, "1.2")
    with pytest.raises(InputError):
        wire.parse_shell_args(["42", "localhost"])


def test_report_line_is_one_line_and_round_trips():
    line = wire.report_line(wire.AT_PREFIX, REPORT)
    assert "\n" not in line and "\r" not in line
    assert wire.parse_report_line(line, wire.AT_PREFIX) == REPORT
    with pytest.raises(InputError):
        wire.parse_report_line("#XTLSCHECK: {not json", wire.AT_PREFIX)


def test_result_fields_round_trip_and_clip():
    fields = wire.result_fields(REPORT)
    assert wire.report_from_result("localhost:8443", SimpleNamespace(**fields)) == REPORT
    long = HandshakeReport("h:1", Failure.HANDSHAKE_FAILED, "é" * 400, sec_tag=1)
    clipped = wire.result_fields(long)["detail"]
    assert len(clipped.encode()) <= wire.MAX_TEXT
    unknown = HandshakeReport("h:1", server_verified=True, client_accepted=None, sec_tag=1)
    back = wire.report_from_result("h:1", SimpleNamespace(**wire.result_fields(unknown)))
    assert back.client_accepted is None


def test_result_fields_fit_the_hosts_payload_limit():
    from provision.link import messages as m

    big = HandshakeReport(
        "h:1",
        Failure.HANDSHAKE_FAILED,
        "d" * 300,
        version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        server_chain=tuple(f"CN={'x' * 200},O={i}" for i in range(8)),
        evidence="e" * 300,
        accepted_as="a" * 300,
        sec_tag=9,
    )
    for limit in (128, 256, 512):
        fields = wire.result_fields(big, max_payload=limit)
        payload = m.payload_of(m.TlsResult(**fields))
        assert len(payload) == wire.result_size(fields) <= limit
        assert fields["failure"] == int(Failure.HANDSHAKE_FAILED) and fields["version"]
    assert len(wire.result_fields(big)["chain"]) == 8


def test_a_shell_complaint_is_not_a_report_line():
    assert wire.is_report_line(wire.report_line(wire.SHELL_PREFIX, REPORT), wire.SHELL_PREFIX)
    assert not wire.is_report_line("tlscheck: command not found", wire.SHELL_PREFIX)
