"""Both dialects through the real simulator runner (sim:// URLs: byte timing, flash file,
faults) and, once, over a pseudo-terminal with pyserial like any line-based tool."""

from __future__ import annotations

import importlib.util
import threading
import time

import pytest

import provision.device
from provision.bundle.model import SlotType
from provision.errors import LinkError, ProvisionError

DIALECTS = ["at-cmng", "zephyr-shell"]


def open_dev(url: str, dialect: str, timeout: float = 1.0):
    return provision.device.open(url, dialect=dialect, timeout=timeout, retries=1)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_write_verify_persist_delete(dialect, device_set, tmp_path):
    flash = tmp_path / "dev.flash"
    url = f"sim://{dialect}?flash={flash}&baud=115200"
    with open_dev(url, dialect) as dev:
        result = dev.write(device_set)
        assert len(result.written) == 3
        assert result.bytes_sent > sum(len(s.data) for s in device_set)
        assert dev.verify(device_set).ok
        clock = dev.session._transport.clock()
        # 115200 baud is 11,520 B/s: the transfer cannot have taken less than its bytes' time.
        assert clock >= result.bytes_sent / 11520
    # A new power-on over the same flash file still holds the set.
    with open_dev(url, dialect) as dev:
        assert dev.verify(device_set).ok
        dev.delete(42)
        assert dev.list() == []
    with open_dev(url, dialect) as dev:
        assert dev.list() == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_device_that_stops_answering(dialect, device_set):
    url = f"sim://{dialect}?silent_after=600"
    with open_dev(url, dialect, timeout=0.2) as dev:
        start = dev.session._transport.clock()
        with pytest.raises(LinkError):
            dev.write(device_set)
        # Bounded: a few timeouts, not a hang (virtual clock, so no wall time is spent).
        assert dev.session._transport.clock() - start < 5


@pytest.mark.parametrize("dialect", DIALECTS)
def test_noisy_line_ends_in_success_or_a_clear_error(dialect, device_set):
    outcomes = []
    for seed in range(6):
        url = f"sim://{dialect}?flip=0.0005&drop=0.0005&seed={seed}"
        try:
            with open_dev(url, dialect, timeout=0.3) as dev:
                dev.write(device_set)
                outcomes.append(dev.verify(device_set).ok)
        except ProvisionError as err:
            assert str(err) and "BEGIN" not in str(err)  # one line, no credential bytes
            outcomes.append(type(err).__name__)
    assert outcomes  # every session ended one way or the other, none hung or crashed


def test_at_cmng_power_cut_mid_write_leaves_whole_entries(device_set, tmp_path):
    flash = tmp_path / "modem.flash"
    url = f"sim://at-cmng?flash={flash}&cut_at=1500"
    with open_dev(url, "at-cmng", timeout=0.2) as dev:
        try:
            dev.write(device_set)
            # The modem rebooted mid-command; the retry of that (idempotent) write recovered.
            assert dev.verify(device_set).ok
        except LinkError:
            pass
        assert dev.session._transport.runner.power_cuts == 1
    with open_dev(f"sim://at-cmng?flash={flash}", "at-cmng") as dev:
        forms = dev.profile.stored_forms(device_set)
        for slot in dev.list():
            # Each %CMNG write is all or nothing: whatever is there is a whole credential.
            assert slot.sha256 is not None
            import hashlib

            assert slot.sha256 == hashlib.sha256(forms[(slot.sec_tag, slot.type)]).digest()


def test_keygen_over_sim():
    from provision.pki.certs import is_pem  # noqa: F401  (pki is importable here)

    with open_dev("sim://at-cmng?cfun=1", "at-cmng") as dev:
        csr = dev.keygen(9, "dev-9")
        assert csr[:1] == b"\x30"
        assert (9, SlotType.CLIENT_KEY) in {(s.sec_tag, s.type) for s in dev.list()}
        assert dev.info().details["cfun"] == 1


@pytest.mark.skipif(
    importlib.util.find_spec("provision.dialects.native") is None,
    reason="auto tries the native dialect first; provision.dialects.native is not in the tree",
)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_auto_probe_picks_the_dialect(dialect):
    with provision.device.open(f"sim://{dialect}", timeout=0.3, retries=1) as dev:
        assert dev.dialect == dialect
        assert dev.info().dialect == dialect


def test_probe_each_dialect_over_sim():
    from provision.dialects.at_cmng import AtCmngSession
    from provision.dialects.zephyr_shell import ZephyrShellSession
    from provision.urls import open_url as open_transport

    for url, at, shell in [("sim://at-cmng", True, False), ("sim://zephyr-shell", False, True)]:
        t = open_transport(url)
        assert AtCmngSession.probe(t, 0.3) is at
        t = open_transport(url)
        assert ZephyrShellSession.probe(t, 0.3) is shell


@pytest.mark.parametrize(
    ("kind", "command", "expect"),
    [
        ("at-cmng", b"AT+CGMR\r\n", b"mfw_nrf91x1_2.0.2\r\nOK\r\n"),
        ("zephyr-shell", b"kernel version\r\n", b"Zephyr version 3.7.0"),
    ],
)
def test_line_based_tool_over_a_pty(kind, command, expect):
    serial = pytest.importorskip("serial")
    from provision.sim.serve import build_runner, serve_pty

    ready = threading.Event()
    where: list[str] = []

    def on_ready(path: str) -> None:
        where.append(path)
        ready.set()

    runner = build_runner(kind, {}, 115200)
    thread = threading.Thread(target=serve_pty, args=(runner, on_ready), daemon=True)
    thread.start()
    assert ready.wait(5)
    with serial.Serial(where[0], 115200, timeout=0.2) as port:
        time.sleep(0.1)
        port.reset_input_buffer()
        port.write(command)
        got = b""
        deadline = time.monotonic() + 5
        while expect not in got and time.monotonic() < deadline:
            got += port.read(256)
    assert expect in got


@pytest.mark.soak
@pytest.mark.parametrize("dialect", DIALECTS)
def test_soak_noisy_sessions(dialect, device_set, tmp_path):
    """Many seeded sessions on a noisy line, a third with a power cut: each ends in success
    or a clear error without credential bytes, and a success holds after a restart."""
    outcomes: dict[str, int] = {}
    for seed in range(200):
        flash = tmp_path / f"{seed}.flash"
        url = f"sim://{dialect}?flash={flash}&flip=0.0002&drop=0.0002&seed={seed}"
        if seed % 3 == 0:
            url += f"&cut_at={300 + 37 * seed}"
        try:
            with open_dev(url, dialect, timeout=0.3) as dev:
                dev.write(device_set)
        except ProvisionError as err:
            assert "BEGIN" not in str(err) and "\n" not in str(err)
            outcomes[type(err).__name__] = outcomes.get(type(err).__name__, 0) + 1
            continue
        outcomes["ok"] = outcomes.get("ok", 0) + 1
        with open_dev(f"sim://{dialect}?flash={flash}", dialect) as dev:
            assert dev.verify(device_set).ok, seed
    assert outcomes.get("ok", 0) > 100, outcomes
