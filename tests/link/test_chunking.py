"""The native DATA chunk size adapts to losses (provision.link.chunking), driven without any
IO: a lossy window shrinks it by restarting under a new transfer id with a smaller chunk in
BEGIN, clean windows grow it back for the next transfer, and a restart that would throw away
more than it saves is not made."""

from __future__ import annotations

import pytest

from provision.link import messages as m
from provision.link.chunking import (
    FRAME_COST,
    ChunkSizer,
    best_chunk,
    lean_largest,
    short_tail,
)
from provision.link.host import HostLink
from provision.link.transfer import HostTransfer, Limits

BUNDLE = bytes(range(256)) * 40  # 10,240 bytes: 11 chunks of 1,000


def machine(sizer: ChunkSizer | None) -> HostTransfer:
    return HostTransfer(
        HostLink(first_seq=1),
        77,
        BUNDLE,
        chunk_size=1000,
        window=8,
        rto=0.5,
        limits=Limits(retries=9, timeout=1.0, budget=1000.0),
        now=0.0,
        sizer=sizer,
    )


def send(t: HostTransfer, now: float) -> list[tuple[m.Message, int]]:
    out = t.poll(now)
    for msg, seq in out:
        t.sent(msg, seq, now)
    return out


def test_the_best_chunk_falls_as_the_byte_error_rate_rises() -> None:
    assert best_chunk(0.0) == float("inf")
    # c(c+o) = o/p: about 75 bytes at 0.4 %, a few hundred at 0.04 %.
    assert 60 < best_chunk(0.004) < 90
    assert 250 < best_chunk(0.0004) < 300
    c = best_chunk(0.004)
    assert c * (c + FRAME_COST) == pytest.approx(FRAME_COST / 0.004)


def test_a_lossy_sample_shrinks_and_clean_samples_grow_back_to_the_largest() -> None:
    sizer = ChunkSizer(1018)
    sizer.sample(1018, copies=8, losses=7)  # most large frames lost: a bad line
    assert sizer.size == 64
    sizer.sample(64, copies=8, losses=0)
    assert sizer.size == 128
    for _ in range(5):
        sizer.sample(sizer.size, copies=8, losses=0)
    assert sizer.size == 1018  # never beyond what the device takes


def test_a_restart_that_throws_away_more_than_it_saves_is_not_made() -> None:
    sizer = ChunkSizer(1018)
    sizer.sample(1018, copies=8, losses=2)  # some loss: smaller chunks would pay off…
    assert sizer.size < 1018 // 2
    assert sizer.shrink_now(1018, acked=0, total=10_000)
    # …but not once nearly everything is acknowledged.
    assert not sizer.shrink_now(1018, acked=9_000, total=10_000)


def test_lost_windows_restart_the_transfer_with_smaller_chunks_under_a_new_id() -> None:
    t = machine(ChunkSizer(1000))
    first = send(t, 0.0)
    assert [type(x).__name__ for x, _ in first] == ["Begin"] + ["Data"] * 8
    assert all(len(x.chunk) == 1000 for x, _ in first if isinstance(x, m.Data))
    # Nothing answers: every copy times out and is sent again, then the sample is judged.
    now, out = 0.0, []
    while now < 20 and not any(isinstance(x, m.Begin) and x.chunk_size < 1000 for x in out):
        now += 0.6
        out = [x for x, _ in send(t, now)]
    new = next((x for x in out if isinstance(x, m.Begin) and x.chunk_size < 1000), None)
    assert new is not None, "no smaller BEGIN after lossy windows"
    assert new.transfer_id != 77 and new.chunk_size <= 512 and t.rechunks == 1
    data = [x for x in out[out.index(new) :] if isinstance(x, m.Data)]
    assert data and all(d.transfer_id == new.transfer_id for d in data)
    assert all(len(d.chunk) == new.chunk_size for d in data)
    # An ACK for the old transfer (its frames were still on the line) changes nothing.
    t.receive(m.Frame(2, m.Ack(77, len(BUNDLE), 0)), now + 0.02)
    assert t.sender.acked_bytes == 0


def test_a_fixed_transfer_keeps_its_chunk_size() -> None:
    t = machine(None)
    now = 0.0
    for _ in range(6):
        now += 0.6
        for msg, _ in send(t, now):
            if isinstance(msg, (m.Begin,)):
                assert msg.chunk_size == 1000
            if isinstance(msg, m.Data):
                assert len(msg.chunk) == 1000
    assert t.rechunks == 0


@pytest.mark.parametrize("total", [1, 200, 1024, 1035, 1300, 2048, 7401, 16_000])
def test_lean_chunks_end_with_a_short_last_chunk_and_stay_within_the_largest(total) -> None:
    chunk = short_tail(total, 1024)
    assert 1 <= chunk <= 1024
    chunks = -(-total // chunk)
    last = total - (chunks - 1) * chunk
    if chunks > 1:
        # About a quarter of the others: its programming is what the line cannot hide, and
        # the one before it is programmed while it arrives.
        assert chunk / 8 <= last <= chunk / 2, (chunk, last)
    # No more frames than needed for a short tail: at most one beyond the fewest.
    assert chunks <= -(-total // 1024) + 1


def test_a_p256_set_goes_as_a_long_and_a_short_chunk() -> None:
    assert short_tail(1035, 1024) == 828  # 828 + 207, not 1,024 + 11


def test_a_faster_line_takes_shorter_lean_chunks() -> None:
    sizes = [lean_largest(10 / baud, 1024) for baud in (9600, 115200, 460800, 921600, 3_000_000)]
    assert sizes[:2] == [1024, 1024]  # the largest up to 115200
    assert sizes[1] > sizes[2] > sizes[3] > 256 and sizes[4] == 256  # never below 256
    assert lean_largest(0.0, 1024) == 1024  # no line rate (TCP): no pacing to fit
