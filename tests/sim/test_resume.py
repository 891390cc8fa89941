"""A link that goes dead mid-transfer and comes back: the host resumes where the device is."""

from __future__ import annotations

import random

from simkit import expected_after, flash_state, make_set, make_store, sim_transport

from provision.dialects.native import NativeSession
from provision.link import messages as m


class Unplugged:
    """Wraps a transport; bytes written between `start` and `end` (seconds) are lost."""

    def __init__(self, inner, start: float, end: float) -> None:
        self.inner, self.start, self.end = inner, start, end
        self.baudrate = inner.baudrate
        self.lost = 0

    def clock(self) -> float:
        return self.inner.clock()

    def write(self, data: bytes) -> None:
        if self.start <= self.inner.now < self.end:
            self.lost += len(data)
            return
        self.inner.write(data)

    def read(self, n: int, timeout: float) -> bytes:
        return self.inner.read(n, timeout)

    def close(self) -> None:
        self.inner.close()


def test_transfer_resumes_after_the_link_comes_back() -> None:
    old = make_set(random.Random(1), (1,))
    new = make_set(random.Random(2), (2, 3, 4), size=2000)
    store = make_store(old)
    inner = sim_transport(store)
    wire = Unplugged(inner, start=0.45, end=1.6)
    acks: list[tuple[int, m.Message]] = []
    s = NativeSession(
        wire, timeout=0.5, retries=4, trace=lambda d, f: acks.append((f.seq, f.message))
    )
    result = s.write(new)
    assert wire.lost > 0
    assert flash_state(store) == expected_after({x.key: x.data for x in old}, new)
    # A BEGIN sent after the outage was answered with what the device already held.
    begins = [seq for seq, msg in acks if isinstance(msg, m.Begin | m.BeginLean)]
    resumed = [
        msg.cumulative
        for seq, msg in acks
        if isinstance(msg, m.Ack) and seq in begins[1:] and msg.cumulative > 0
    ]
    assert resumed, "no BEGIN after the outage resumed the transfer"
    bundle_size = sum(len(x.data) for x in new)
    # Resuming, not starting over: far less than two full copies on the wire.
    assert result.bytes_sent < 1.6 * bundle_size
