"""A device that never stops talking (logs every 5 ms, one endless line, an echo storm)
never holds a line dialect's session forever: every read has an overall deadline, and
what the host buffers is bounded by the dialect's longest line."""

from __future__ import annotations

import pytest

from provision.dialects import session_class
from provision.dialects.lines import DRAIN_LIMIT, drain
from provision.errors import LinkError


class Talkative:
    """A transport on a virtual clock whose device prints `chunk` every 5 ms forever and
    ignores what it is sent (or, with `echo`, repeats every byte back twice)."""

    def __init__(self, chunk: bytes, echo: bool = False) -> None:
        self.chunk = chunk
        self.echo = echo
        self.now = 0.0
        self.pending = bytearray()

    def clock(self) -> float:
        return self.now

    def write(self, data: bytes) -> None:
        if self.echo:
            self.pending += data * 2

    def read(self, max_bytes: int, timeout: float) -> bytes:
        self.now += min(timeout, 0.005)
        self.pending += self.chunk
        out = bytes(self.pending[:max_bytes])
        del self.pending[:max_bytes]
        return out

    def close(self) -> None:
        pass


CHATTER = {
    "log lines": b"[00:00:01.000,000] <inf> app: still alive and logging\r\n",
    "one endless line": b"x" * 64,
    "echo storm": b"",
}


@pytest.mark.parametrize("what", list(CHATTER))
@pytest.mark.parametrize("dialect", ["native", "at-cmng", "zephyr-shell", "at-shell"])
def test_a_session_with_a_device_that_never_stops_talking_ends(dialect: str, what: str) -> None:
    transport = Talkative(CHATTER[what], echo=what == "echo storm")
    with pytest.raises(LinkError):
        session_class(dialect)(transport, timeout=0.5, retries=2)
    # Three tries of 0.5 s, each resync drain bounded: seconds, not forever.
    assert transport.now < 3 * (0.5 + 2 * DRAIN_LIMIT) + 1.0


def test_drain_stops_at_its_limit_however_much_arrives() -> None:
    transport = Talkative(CHATTER["log lines"])
    drain(transport, quiet=0.1)
    assert transport.now <= DRAIN_LIMIT + 0.01
