"""The pyserial transport over a real pty: reads return what arrived, time out empty, and
do not reconfigure the port on every call (each timeout change is a tcsetattr)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from provision.transport import serial as serial_transport


@pytest.fixture
def pty_port():  # type: ignore[no-untyped-def]
    master, slave = os.openpty()
    transport = serial_transport.open_serial(os.ttyname(slave), 115200)
    reconfigures = []
    port = transport.port
    original = port._reconfigure_port

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        reconfigures.append(port.timeout)
        return original(*args, **kwargs)

    port._reconfigure_port = counting
    yield transport, master, reconfigures
    transport.close()
    os.close(master)
    os.close(slave)


def test_reads_return_data_without_reconfiguring_the_port(pty_port) -> None:
    transport, master, reconfigures = pty_port
    reading = threading.Semaphore(0)

    def device() -> None:
        # Answer a moment after each read has started, so reads wait in the port as they do
        # on the line (the data is not there yet when read() looks).
        for i in range(40):
            reading.acquire()
            time.sleep(0.002)
            os.write(master, bytes([i]) * 3)

    writer = threading.Thread(target=device)
    writer.start()
    got = b""
    try:
        for i in range(40):
            reading.release()
            while len(got) < 3 * (i + 1):
                piece = transport.read(4096, 2.0)
                assert piece, "data written to the pty must arrive"
                got += piece
    finally:
        for _ in range(40):
            reading.release()
        writer.join()
    assert got == b"".join(bytes([i]) * 3 for i in range(40))
    assert reconfigures == []


def test_read_honours_max_bytes(pty_port) -> None:
    transport, master, _ = pty_port
    os.write(master, b"abcdef")
    first = transport.read(2, 2.0)
    assert first == b"ab"
    rest = b""
    while len(rest) < 4:
        rest += transport.read(4096, 2.0)
    assert rest == b"cdef"


def test_empty_read_returns_nothing_and_uses_few_timeouts(pty_port) -> None:
    transport, _master, reconfigures = pty_port
    for _ in range(5):
        assert transport.read(4096, 0.03) == b""
    # The tail of each wait is taken from a short list of steps, not a fresh float per call.
    assert set(reconfigures) <= {serial_transport.POLL, *serial_transport._TAIL_STEPS}
    assert transport.read(4096, 0.0) == b""


@pytest.mark.parametrize("left", [0.0004, 0.001, 0.0015, 0.004, 0.019, 0.02, 0.049, 0.05, 3.0])
def test_wait_slices_stay_within_a_millisecond_of_the_deadline(left: float) -> None:
    wait = serial_transport._wait_for(left)
    assert 0 < wait <= max(left, 0.001)
    assert wait <= serial_transport.POLL
    assert wait == serial_transport.POLL or wait in serial_transport._TAIL_STEPS
