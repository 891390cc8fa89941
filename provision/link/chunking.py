"""How large the native transfer's DATA chunks are: shrink on losses, grow back when clean.

Sans-IO. A DATA frame lost to one bad byte costs its whole length again, so the best chunk
size falls as the line's byte error rate rises: a frame of c payload bytes and o bytes of
framing arrives whole with probability (1-p)^(c+o), and the payload per byte sent,
c/(c+o)·(1-p)^(c+o), is largest where c(c+o) = o/p. At p = 0.4 % and o ≈ 32 that is about
75 bytes; the largest chunk (1,018) arrives whole 1.6 % of the time.

The wire format does not change: a device takes DATA of exactly the chunk size its BEGIN
announced (provision/link/device.py `_data`, firmware_stub/src/proto.c `on_data`: offset a
multiple of it, length equal to it but for the last), and a BEGIN with another chunk size
starts the transfer over. So a new size takes effect only at a BEGIN from zero: a shrink
restarts the transfer at once (under such losses little has been acknowledged, and every
large frame still to come would cost far more), and a grown size waits for the next
transfer (or a restart the device forces), where it costs nothing.
"""

from __future__ import annotations

import math

# Framing bytes a DATA frame costs besides its chunk (frame header, CRC, DATA header,
# delimiters, and the ACK it is answered with), as the native session also estimates it.
FRAME_COST = 32
MIN_CHUNK = 64
MIN_LEAN_CHUNK = 256
# DATA frames a loss rate is judged over (at least a window's worth).
MIN_SAMPLE = 8


def best_chunk(byte_error_rate: float) -> float:
    """The chunk size that carries the most payload per byte sent at this error rate."""
    if byte_error_rate <= 0:
        return math.inf
    o = FRAME_COST
    # c(c+o) = o/p, the maximum of c/(c+o)·(1-p)^(c+o) (with ln(1-p) ≈ -p).
    return (-o + math.sqrt(o * o + 4 * o / byte_error_rate)) / 2


class ChunkSizer:
    """The chunk size for the next BEGIN, from the losses seen so far in a session."""

    def __init__(self, max_size: int, min_size: int = MIN_CHUNK) -> None:
        self.max_size = max_size
        self.min_size = min(min_size, max_size)
        self.size = max_size
        self.byte_error_rate = 0.0  # as the last lossy sample implied

    def sample(self, chunk_size: int, copies: int, losses: int) -> None:
        """`copies` DATA frames of `chunk_size` went out, `losses` of them had to be sent
        again. A clean sample doubles the size (up to the largest); a lossy one sets it to
        the best size for the byte error rate the losses imply."""
        if copies <= 0:
            return
        if losses == 0:
            self.size = min(self.max_size, max(self.size, chunk_size) * 2)
            return
        frame_loss = min(losses / copies, 0.95)
        self.byte_error_rate = 1 - (1 - frame_loss) ** (1 / (chunk_size + FRAME_COST))
        best = best_chunk(self.byte_error_rate)
        size = 1 << max(0, int(math.log2(best))) if best < self.max_size else self.max_size
        self.size = max(self.min_size, min(self.max_size, size))

    def shrink_now(self, chunk_size: int, acked: int, total: int) -> bool:
        """Whether sending all `total` bytes again at `self.size` costs fewer bytes than the
        `total - acked` still to send at `chunk_size`, at the byte error rate last seen
        (only for a size at most half the current one). Losses that are not byte errors
        (a receive buffer overrun by a full window) look like them; the acknowledged part
        they would throw away keeps the restart from paying late in a transfer."""
        if self.size * 2 > chunk_size:
            return False
        return self._cost(self.size, total) < self._cost(chunk_size, total - acked)

    def _cost(self, chunk: int, payload: int) -> float:
        """Expected bytes on the wire to deliver `payload` in chunks of `chunk`."""
        frame = chunk + FRAME_COST
        whole = (1 - self.byte_error_rate) ** frame
        return payload * frame / chunk / max(whole, 1e-9)


def short_tail(total: int, largest: int) -> int:
    """The chunk size for `total` bytes in chunks of at most `largest` that leaves a last
    chunk about a quarter of the others. A device programs each chunk once it has arrived,
    while the next arrives; only the last one's programming is not hidden behind the line,
    so a short last chunk ends the transfer sooner (and a last chunk of a few bytes would
    leave the one before it unhidden instead): 1,035 bytes go as 828 + 207, not 1,024 + 11."""
    if total <= 0:
        return largest
    n = math.ceil(total / largest + 0.75)
    return max(1, min(largest, math.ceil(total / (n - 0.75))))


def lean_largest(byte_time: float, largest: int) -> int:
    """The largest lean chunk at a line of `byte_time` seconds per byte (0: no line rate).

    Framing costs each chunk ~12 bytes of line time; a device that programs at its flash's
    pace cannot start before the first chunk is in nor end before the last is programmed,
    which costs about a chunk's programming time. The sum is least at a chunk that grows
    with the square root of the byte time, so a faster line takes shorter chunks: `largest`
    at 115200 baud, 362 bytes at 921600 (at 921600 a small device's flash, 10 µs a byte, is
    as slow as the line)."""
    if byte_time <= 0:
        return largest
    scaled = largest * math.sqrt(byte_time / (10 / 115200))
    return max(MIN_LEAN_CHUNK, min(largest, int(scaled)))
