"""A native session opened pipelined, as `device write` opens it (docs/protocol.md §3.1):
the transfer goes out before HELLO's answer, in lean frames; COMMIT waits for HELLO_INFO
and the set's check; a device without LEAN gets a classic transfer."""

from __future__ import annotations

import random

import pytest
from simkit import expected_after, flash_state, make_set, make_store, sim_transport

from provision.dialects.native import NativeSession
from provision.errors import PolicyError

OLD = make_set(random.Random(1), (1,))


def pipelined(transport, log: list) -> NativeSession:
    return NativeSession(
        transport,
        timeout=0.5,
        retries=3,
        trace=lambda d, f: log.append((d, type(f.message).__name__)),
        pipeline=True,
    )


def test_the_transfer_goes_out_before_hello_info_comes_back() -> None:
    store, new, log = make_store(OLD), make_set(random.Random(2), (2, 3)), []
    s = pipelined(sim_transport(store), log)
    result = s.write(new)
    assert result.confirmed
    assert log.index(("tx", "BeginLean")) < log.index(("rx", "HelloInfo"))
    assert log.index(("tx", "DataLean")) < log.index(("rx", "HelloInfo"))
    assert log.index(("rx", "HelloInfo")) < log.index(("tx", "Commit"))
    assert ("tx", "Begin") not in log and ("tx", "Data") not in log
    assert flash_state(store) == expected_after({x.key: x.data for x in OLD}, new)


def test_a_device_without_lean_gets_a_classic_transfer_and_the_lean_chunk_back() -> None:
    store, new, log = make_store(OLD), make_set(random.Random(2), (2, 3), size=600), []
    transport = sim_transport(store, lean="0")
    s = pipelined(transport, log)
    s.write(new)
    assert ("tx", "DataLean") in log and ("tx", "Data") in log
    assert ("tx", "Commit") in log and ("tx", "Begin") in log
    assert flash_state(store) == expected_after({x.key: x.data for x in OLD}, new)
    # The refused lean chunk was cut short where it stood when HELLO_INFO said no LEAN (a
    # HELLO round trip in): the device received about what a classic session sends.
    classic = sim_transport(make_store(OLD), lean="0")
    NativeSession(classic, timeout=0.5, retries=3).write(new)
    extra = transport.runner.rx_count - classic.runner.rx_count
    assert 0 < extra < 150, extra


def test_a_set_the_device_cannot_hold_is_refused_before_commit_with_nothing_applied() -> None:
    store = make_store(OLD, profile="small")  # holds 4 sec_tags
    log: list = []
    s = pipelined(sim_transport(store), log)
    with pytest.raises(PolicyError):
        s.write(make_set(random.Random(2), (2, 3, 4, 5, 6)))
    assert ("tx", "BeginLean") in log  # staged, which changes nothing
    assert ("tx", "Commit") not in log
    assert flash_state(store) == {x.key: x.data for x in OLD}


class LoseHello:
    """Wraps a transport; the first HELLO frame written is lost on the line."""

    def __init__(self, inner) -> None:
        self.inner, self.baudrate, self.writes = inner, inner.baudrate, 0

    def clock(self) -> float:
        return self.inner.clock()

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes != 2:  # the first write is the flushing 0x00, the second HELLO
            self.inner.write(data)

    def read(self, n: int, timeout: float) -> bytes:
        return self.inner.read(n, timeout)

    def close(self) -> None:
        self.inner.close()


def test_a_lost_hello_is_asked_again_and_the_transfer_carries_on() -> None:
    store, new, log = make_store(OLD), make_set(random.Random(2), (2,)), []
    s = pipelined(LoseHello(sim_transport(store)), log)
    assert s.write(new).confirmed
    assert [e for e in log if e == ("tx", "Hello")] == [("tx", "Hello")] * 2
    assert flash_state(store) == expected_after({x.key: x.data for x in OLD}, new)
