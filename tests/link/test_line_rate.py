"""Switching a native session's line rate (CHANGE_BAUD, docs/protocol.md §2.8) against the
simulator, whose line garbles bytes between unequal rates as a UART does."""

from __future__ import annotations

import json
import random

import pytest

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.dialects.native import NativeSession
from provision.errors import PolicyError
from provision.link import messages as m
from provision.sim.serve import open_sim_transport


def _set(size: int = 3000) -> CredentialSet:
    rng = random.Random(5)
    return CredentialSet.of(
        [
            Slot(7, SlotType.ROOT_CA, Encoding.DER, rng.randbytes(size)),
            Slot(7, SlotType.CLIENT_CERT, Encoding.DER, rng.randbytes(size // 2)),
        ]
    )


def _open(options: str = "") -> tuple[NativeSession, object, list[str]]:
    transport = open_sim_transport(f"sim://native?baud=115200{options}")
    sent: list[str] = []

    def trace(direction: str, frame: m.Frame) -> None:
        if direction == "tx":
            sent.append(frame.message.TYPE.name)

    return NativeSession(transport, timeout=1.0, retries=3, trace=trace), transport, sent


def test_auto_switches_to_the_fastest_advertised_rate_and_writes_there() -> None:
    s, transport, sent = _open()
    assert s.hello.rates == (115200, 230400, 460800, 921600)
    assert s.switch_baud(None) == 921600
    assert transport.baudrate == transport.runner.baud == 921600
    assert sent == ["HELLO", "CHANGE_BAUD", "HELLO"]
    creds = _set()
    result = s.write(creds)
    # Every host byte of the write timed at the new rate: 10 bits at 921600 each.
    assert result.seconds < result.bytes_sent * 10 / 460800
    assert {(x.sec_tag, x.type) for x in s.list()} == {x.key for x in creds}


def test_a_device_that_advertises_no_rates_is_never_asked() -> None:
    s, _, sent = _open("&rates=")
    assert not s.hello.features & m.Feature.BAUD
    assert s.switch_baud(None) == 115200
    assert s.switch_baud(921600) == 115200
    assert sent == ["HELLO"]


def test_a_rate_the_device_does_not_offer_is_refused_before_anything_is_sent() -> None:
    s, _, sent = _open("&rates=115200,460800")
    with pytest.raises(PolicyError, match="offers 115200, 460800"):
        s.switch_baud(921600)
    assert sent == ["HELLO"]
    assert s.switch_baud(None) == 460800


def test_a_rate_the_line_cannot_carry_falls_back_to_the_opening_rate() -> None:
    s, transport, _ = _open("&line_max=460800")
    assert s.switch_baud(921600) == 115200
    assert transport.baudrate == transport.runner.baud == 115200
    creds = _set(800)
    s.write(creds)
    assert {(x.sec_tag, x.type) for x in s.list()} == {x.key for x in creds}


def test_close_leaves_the_device_at_the_rate_the_next_session_opens_at() -> None:
    s, transport, _ = _open()
    s.switch_baud(None)
    s.close()
    assert transport.runner.baud == 115200
    transport.closed = False
    again = NativeSession(transport, timeout=1.0, retries=3)
    assert again.hello.uid == s.hello.uid


def test_a_device_left_fast_by_a_vanished_host_returns_to_its_opening_rate() -> None:
    s, transport, _ = _open()
    s.switch_baud(None)
    transport.runner.set_host_baud(115200)  # a new host run, at --baud, nothing switched back
    again = NativeSession(transport, timeout=1.0, retries=3)
    assert transport.runner.baud == 115200
    assert again.hello.uid == s.hello.uid


def test_fast_baud_on_the_command_line(cli) -> None:
    result = cli(
        ["device", "info", "-p", "sim://native?baud=115200", "--fast-baud", "auto", "--json"]
    )
    assert result.exit_code == 0, result.output
    details = json.loads(result.output)["details"]
    assert details["baud"] == 921600
    bad = cli(["device", "info", "-p", "sim://native", "--fast-baud", "fast"])
    assert bad.exit_code == 2  # a bad option value: a bad command line
    assert "--fast-baud 'fast'" in bad.output


def test_the_switch_moves_the_port_itself_behind_the_lines_interrupt_wrapper() -> None:
    from provision import device

    # line run opens every device behind an InterruptibleTransport (its signals cut reads
    # short): the new rate must reach the port under it, or the host stays at the old rate.
    opened = device.open(
        "sim://native?baud=115200", dialect="native", fast_baud=921600, interrupt=lambda: False
    )
    with opened:
        port = opened.session.transport.inner  # type: ignore[attr-defined]
        assert port.baudrate == port.runner.baud == 921600
        assert opened.session.list() == []
