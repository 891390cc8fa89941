"""The host side of the native protocol, sans-IO: framing of requests, decoding of answers,
the transfer window with retransmission, and ERROR codes mapped to clear messages.

Nothing here reads a port or a clock: times are passed in (`now`). The drive loop that does
IO, timeouts and retries is provision.dialects.native.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from provision.errors import DeviceError, PolicyError, ProvisionError, StoreFull
from provision.link import framing
from provision.link import messages as m
from provision.transport.base import SPEED_HINT

HOST_MAX_PAYLOAD = 1024
# The chunk of a lean transfer (Feature.LEAN), below the protocol's LEAN_MAX_CHUNK: one
# frame's worth of loss stays small, and a P-256 set takes one or two frames.
HOST_LEAN_CHUNK = 1024


class HostLink:
    """Numbers requests and turns received bytes into frames (bad frames are dropped)."""

    def __init__(self, first_seq: int | None = None) -> None:
        # A random start makes it unlikely that a new run's request matches, by seq and type,
        # the answer a still-powered device remembers from an earlier run.
        self._seq = (random.randrange(0xFFFF) if first_seq is None else first_seq - 1) % 0xFFFF
        self.decoder = framing.FrameDecoder(m.HEADER_SIZE + m.MAX_PAYLOAD)
        self.bad_frames = 0
        # Bytes received since the last frame that decoded: many, with no frame, is a line
        # speed mismatch or another protocol, not silence (see no_answer_hint).
        self.undecoded_bytes = 0

    def no_answer_hint(self) -> str:
        """What a "no answer" error should suggest: noise without a frame points at --baud."""
        if self.undecoded_bytes:
            # No count in the text: `line run` repeats a notice only when its reason changes.
            return f"bytes arrived but no frame decoded: {SPEED_HINT}"
        return "is a device on this port?"

    def next_seq(self) -> int:
        self._seq = self._seq % 0xFFFF + 1  # 1..65535, never 0
        return self._seq

    def frame(self, msg: m.Message, seq: int) -> bytes:
        return framing.pack(m.encode(msg, seq))

    def receive_data(self, data: bytes) -> list[m.Frame]:
        frames = []
        for event in self.decoder.feed(data):
            if isinstance(event, framing.BadFrame):
                self.bad_frames += 1
                continue
            try:
                frames.append(m.decode(event))
            except ProvisionError:
                # A frame that passed its CRC but is not a message we know: as noise.
                self.bad_frames += 1
        self.undecoded_bytes = 0 if frames else self.undecoded_bytes + len(data)
        return frames


ERROR_TEXT: dict[int, str] = {
    m.ErrorCode.UNSUPPORTED_VERSION: "the device speaks another protocol version",
    m.ErrorCode.UNKNOWN_MESSAGE: "the device does not know this request",
    m.ErrorCode.MALFORMED: "the device could not parse the request",
    m.ErrorCode.NO_TRANSFER: "the device has no such transfer (it may have restarted)",
    m.ErrorCode.INCOMPLETE: "the device does not hold the whole bundle yet",
    m.ErrorCode.DIGEST_MISMATCH: "the bundle's digest on the device differs from the one sent",
    m.ErrorCode.BAD_BUNDLE: "the device rejected the bundle as malformed",
    m.ErrorCode.BAD_SIGNATURE: "the bundle signature is missing or not valid for this device",
    m.ErrorCode.TOO_LARGE: "the bundle is larger than the device accepts",
    m.ErrorCode.NO_SPACE: "the device's credential store is too small for this set",
    m.ErrorCode.NOT_FOUND: "no such slot or sec_tag on the device",
    m.ErrorCode.FORBIDDEN: "this slot cannot be read back from the device",
    m.ErrorCode.GUARD: "deleting everything needs the guard value",
    m.ErrorCode.UNSUPPORTED: "the device does not support this",
    m.ErrorCode.FLASH: "the device failed to write its flash",
    m.ErrorCode.BUSY: "the device is busy",
}

_POLICY = {m.ErrorCode.NO_SPACE, m.ErrorCode.TOO_LARGE, m.ErrorCode.FORBIDDEN}


def device_error(err: m.Error) -> ProvisionError:
    """ERROR frame → the exception a user sees (one line, stable code for --json)."""
    try:
        code = m.ErrorCode(err.code)
        text, name = ERROR_TEXT[code], code.name.lower()
    except ValueError:
        text, name = f"the device reported error 0x{err.code:02x}", f"0x{err.code:02x}"
    try:
        request = m.MsgType(err.request).name
    except ValueError:
        request = f"0x{err.request:02x}"
    detail = f" ({err.detail})" if err.detail else ""
    if err.code == m.ErrorCode.NO_SPACE:
        return StoreFull(f"{request}: {text}{detail}")
    cls = PolicyError if err.code in _POLICY else DeviceError
    return cls(f"{request}: {text}{detail}", code=f"device.{name}")


@dataclass
class _Chunk:
    offset: int
    data: bytes
    held: bool = False
    sent_at: float | None = None  # when its last copy should have reached the device
    epoch: int = 0  # the BEGIN its last copy was sent after


class TransferSender:
    """Window, ACK/SACK/NAK handling and retransmission timers for one transfer. Sans-IO.

    `due(now)` returns the DATA messages to send now; `sent(chunk_offset, arrival)` records
    when the copy will have reached the device (the drive loop knows the line time);
    ACK/NAK go to `on_ack`/`on_nak`. `timeouts` counts consecutive retransmission timeouts
    without progress; the drive loop gives up when it passes its retry limit.
    """

    def __init__(
        self,
        transfer_id: int,
        data: bytes,
        chunk_size: int,
        window: int,
        *,
        rto: float,
        rto_max: float,
        lean: bool = False,
    ) -> None:
        # Feature.LEAN: BEGIN_LEAN and DATA_LEAN frames (chunks named by index).
        self.lean = lean
        self.transfer_id = transfer_id
        self.total = len(data)
        self._data = data
        self.window = max(1, min(window, m.MAX_WINDOW))
        self._cut(chunk_size)
        self.copies = 0  # DATA frames handed out, first copies and resent ones
        self.rto_initial = rto
        self.rto = rto
        self.rto_max = max(rto, rto_max)
        self.cum = 0  # index of the first chunk not held
        self.timeouts = 0
        self.retransmissions = 0
        self.epoch = 0

    def _cut(self, chunk_size: int) -> None:
        self.chunk_size = chunk_size
        data = self._data
        self.chunks = [
            _Chunk(off, data[off : off + chunk_size]) for off in range(0, len(data), chunk_size)
        ]

    def rechunk(self, chunk_size: int, transfer_id: int) -> None:
        """Start over with another chunk size under a new transfer id (the device takes
        one chunk size per BEGIN; answers to the old id's frames are then ignored)."""
        self.transfer_id = transfer_id
        self._cut(chunk_size)
        self.cum = 0
        self.timeouts = 0
        self.rto = self.rto_initial

    @property
    def acked_bytes(self) -> int:
        return min(self.total, self.cum * self.chunk_size)

    @property
    def complete(self) -> bool:
        return self.cum >= len(self.chunks)

    @property
    def all_sent(self) -> bool:
        return all(c.held or c.sent_at is not None for c in self.chunks)

    def begin(self, sha256: bytes) -> m.Begin | m.BeginLean:
        """The BEGIN to send (first, or again to resume); starts a new epoch."""
        self.epoch += 1
        if self.lean:
            digest = sha256[: m.LEAN_DIGEST_SIZE]
            return m.BeginLean(self.transfer_id, self.total, self.chunk_size, digest)
        return m.Begin(self.transfer_id, self.total, self.chunk_size, sha256)

    def set_window(self, window: int) -> None:
        """The device's window, once known (a transfer may start before HELLO_INFO)."""
        self.window = max(1, min(window, m.MAX_WINDOW))

    def _in_window(self) -> range:
        return range(self.cum, min(len(self.chunks), self.cum + self.window))

    def due(self, now: float) -> list[m.Data | m.DataLean]:
        self._check_timeout(now)
        out: list[m.Data | m.DataLean] = []
        for i in self._in_window():
            c = self.chunks[i]
            if not c.held and c.sent_at is None:
                if self.lean:
                    out.append(m.DataLean(self.transfer_id, i, c.data))
                else:
                    out.append(m.Data(self.transfer_id, c.offset, c.data))
                self.copies += 1
                c.epoch = self.epoch
                c.sent_at = now  # replaced by sent() with the real arrival estimate
        return out

    def sent(self, offset: int, arrival: float) -> None:
        self.chunks[offset // self.chunk_size].sent_at = arrival

    def _check_timeout(self, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return
        self.timeouts += 1
        self.rto = min(self.rto * 2, self.rto_max)
        for i in self._in_window():
            c = self.chunks[i]
            if not c.held and c.sent_at is not None:
                c.sent_at = None
                self.retransmissions += 1

    def next_deadline(self) -> float | None:
        """When the oldest unacknowledged chunk times out (None: nothing in flight)."""
        times = [
            sent_at
            for i in self._in_window()
            if not self.chunks[i].held and (sent_at := self.chunks[i].sent_at) is not None
        ]
        return min(times) + self.rto if times else None

    def on_ack(self, ack: m.Ack, now: float, *, authoritative: bool = False) -> None:
        """Apply an ACK. `authoritative` (the answer to the latest BEGIN) may move cumulative
        backwards: the device lost what it had (a restart), so what was sent before that
        BEGIN is sent again; copies sent after it are still on their way."""
        if ack.transfer_id != self.transfer_id:
            return
        cum = min(len(self.chunks), -(-ack.cumulative // self.chunk_size))
        if ack.cumulative >= self.total:
            cum = len(self.chunks)
        if authoritative:
            for c in self.chunks[cum:]:
                c.held = False
                if c.epoch < self.epoch:
                    c.sent_at = None
        for c in self.chunks[:cum]:
            c.held = True
        if authoritative or cum > self.cum:
            if cum > self.cum:
                self.timeouts = 0
                self.rto = self.rto_initial
            self.cum = cum
        highest = -1
        for i in range(32):
            if ack.sack >> i & 1:
                idx = cum + 1 + i
                if idx < len(self.chunks):
                    self.chunks[idx].held = True
                    highest = idx
        # Frames are not reordered on a serial line: a held chunk above a missing one means
        # the missing one was lost. Resend it once, now, instead of waiting for the timer.
        for idx in range(self.cum, highest):
            self._fast_retransmit(idx, now)

    def on_nak(self, nak: m.Nak, now: float) -> None:
        if nak.transfer_id != self.transfer_id:
            return
        self._fast_retransmit(nak.offset // self.chunk_size, now)

    def _fast_retransmit(self, idx: int, now: float) -> None:
        """Resend a chunk the device reports missing, if its last copy should have arrived
        by now (else that copy is still on the line and will answer for itself)."""
        if 0 <= idx < len(self.chunks):
            c = self.chunks[idx]
            if not c.held and c.sent_at is not None and c.sent_at <= now:
                c.sent_at = None
                self.retransmissions += 1

    def restart(self) -> None:
        """The device lost the transfer: everything is unacknowledged again."""
        self.cum = 0
        for c in self.chunks:
            c.held = False
            c.sent_at = None
