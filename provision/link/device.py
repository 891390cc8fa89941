"""The device side of the native protocol as a sans-IO state machine.

`DeviceProtocol(ops, ...).receive_data(bytes) -> bytes` handles framing, the duplicate-request
cache, the transfer window (reassembly, ACK/NAK) and the digest check; what the device *does*
(store, decode, keygen) is behind `DeviceOps`, implemented by the simulator
(provision.sim.native) — the C stub implements the same rules (docs/protocol.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from provision.link import framing
from provision.link import messages as m
from provision.link.errors import RemoteProtocolError


class DeviceFault(Exception):
    def __init__(self, code: m.ErrorCode, detail: str = "") -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail[: m.MAX_TEXT]


class DeviceOps(Protocol):
    def hello_info(self, max_payload: int, window: int, max_bundle: int) -> m.HelloInfo: ...

    def list_entries(self) -> list[m.Entry]: ...

    def read_slot(self, sec_tag: int, slot: int) -> bytes: ...

    def apply_bundle(self, data: bytes) -> tuple[int, bytes]:
        """Decode, check and apply atomically; return (slot_count, set_digest)."""
        ...

    def delete(self, scope: m.DeleteScope, sec_tag: int, slot: int) -> None: ...

    def keygen(self, sec_tag: int, subject: str) -> bytes: ...

    def reset(self) -> None: ...

    # Optional: `stage(transfer_id, prefix)` is told each time the bundle's contiguous prefix
    # grows, so a device can program it while the rest arrives (provision.sim.native).
    # Optional: `baud_rates() -> tuple[int, ...]` (the rates it advertises with
    # Feature.BAUD) and `set_baud(rate) -> int` (switch the UART once the bytes already
    # answered have left; return the rate it was at) for CHANGE_BAUD.


@dataclass
class _Transfer:
    transfer_id: int
    total: int
    chunk: int
    sha256: bytes
    buffer: bytearray
    held: bytearray  # one flag per chunk
    cumulative_chunks: int = 0
    lean: bool = False  # begun by BEGIN_LEAN: `sha256` is then the digest's first 4 bytes

    @property
    def chunks(self) -> int:
        return len(self.held)

    @property
    def cumulative(self) -> int:
        return min(self.total, self.cumulative_chunks * self.chunk)

    def sack(self) -> int:
        bits = 0
        base = self.cumulative_chunks + 1
        for i in range(32):
            if base + i < self.chunks and self.held[base + i]:
                bits |= 1 << i
        return bits


class DeviceProtocol:
    def __init__(
        self,
        ops: DeviceOps,
        *,
        max_payload: int = 512,
        window: int = 8,
        max_bundle: int = 48 * 1024,
        lean: bool = False,
    ) -> None:
        self.ops = ops
        self.max_payload = max_payload
        self.window = min(window, m.MAX_WINDOW)
        self.max_bundle = max_bundle
        self.host_payload = m.MIN_PAYLOAD
        # Feature.LEAN: DATA_LEAN frames are streamed into the transfer's buffer as they are
        # decoded, so they may be longer than a control frame.
        self.lean = lean
        max_body = m.HEADER_SIZE + max_payload
        if lean:
            max_body = max(max_body, m.LEAN_DATA_HEADER + m.LEAN_MAX_CHUNK)
        self.decoder = framing.FrameDecoder(max_body)
        self.transfer: _Transfer | None = None
        self._last: tuple[int, int, bytes] | None = None  # (seq, type, response wire bytes)
        self.frames = 0
        # After CHANGE_BAUD: the rate to go back to if the first frame at the new one is bad
        # (the host could not follow, or gave up and went back first).
        self._baud_fallback: int | None = None
        self._baud_to: int | None = None  # the rate the latest CHANGE_BAUD accepted
        self._base_baud: int | None = None  # the rate before the first switch, while switched
        self._bad_run = 0  # bad frames in a row while switched

    def receive_data(self, data: bytes) -> bytes:
        out = bytearray()
        for event in self.decoder.feed(data):
            self.frames += 1
            if self._base_baud is not None:
                self._bad_run = self._bad_run + 1 if isinstance(event, framing.BadFrame) else 0
                if self._bad_run >= (1 if self._baud_fallback is not None else 2):
                    # Not confirmed at the new rate, or a host talking at the rate the
                    # device opened at (it ended without switching back): back to that.
                    self.ops.set_baud(self._base_baud)  # type: ignore[attr-defined]
                    self._base_baud = self._baud_to = None
                    self._bad_run = 0
                self._baud_fallback = None
            if isinstance(event, framing.BadFrame):
                t = self.transfer
                nak = m.Nak(
                    t.transfer_id if t else 0, t.cumulative if t else 0, m.NakReason.BAD_FRAME
                )
                out += self._send(nak, 0)
            else:
                out += self._frame(event)
        return bytes(out)

    def _send(self, msg: m.Message, seq: int) -> bytes:
        return framing.pack(m.encode(msg, seq))

    def _frame(self, body: bytes) -> bytes:
        if self.lean and m.is_lean_data(body):
            return self._lean_data(body)
        try:
            version, type_, seq = m.decode_header(body)
        except RemoteProtocolError:
            return self._send(m.Error(m.ErrorCode.MALFORMED, 0, "short frame"), 0)
        if version != m.PROTOCOL_VERSION:
            err = m.Error(
                m.ErrorCode.UNSUPPORTED_VERSION,
                type_,
                f"device speaks version {m.PROTOCOL_VERSION}",
            )
            return self._send(err, seq)
        if type_ not in m.REQUESTS:
            return self._send(m.Error(m.ErrorCode.UNKNOWN_MESSAGE, type_, ""), seq)
        if type_ != m.MsgType.DATA and self._last and self._last[:2] == (seq, type_):
            out = self._last[2]
        else:
            out = self._answer(body, type_, seq)
            if type_ == m.MsgType.RESET:
                self.ops.reset()
        if type_ == m.MsgType.CHANGE_BAUD and self._baud_to is not None:
            # The OK has gone out at the old rate; the port switches after it (a repeated
            # CHANGE_BAUD, answered from the cache, switches again after its OK).
            before = self.ops.set_baud(self._baud_to)  # type: ignore[attr-defined]
            self._baud_fallback = before
            if self._base_baud is None:
                self._base_baud = before
            elif self._baud_to == self._base_baud:
                self._base_baud = self._baud_fallback = None  # switched back by the host
        return out

    def _answer(self, body: bytes, type_: int, seq: int) -> bytes:
        if type_ == m.MsgType.HELLO:
            # A new session: a remembered answer belongs to an earlier host run.
            self._last = None
        if type_ == m.MsgType.CHANGE_BAUD:
            self._baud_to = None
        try:
            msg = m.decode(body).message
        except RemoteProtocolError as err:
            out = self._send(m.Error(m.ErrorCode.MALFORMED, type_, err.message[: m.MAX_TEXT]), seq)
        else:
            try:
                reply = self._handle(msg)
            except DeviceFault as fault:
                reply = m.Error(fault.code, type_, fault.detail)
            out = self._send(reply, seq)
        if type_ != m.MsgType.DATA:
            self._last = (seq, type_, out)
        return out

    # -- requests
    def _handle(self, msg: m.Message) -> m.Message:
        if isinstance(msg, m.Hello):
            if msg.version != m.PROTOCOL_VERSION:
                raise DeviceFault(
                    m.ErrorCode.UNSUPPORTED_VERSION, f"device speaks version {m.PROTOCOL_VERSION}"
                )
            self.host_payload = max(m.MIN_PAYLOAD, min(msg.max_payload, m.MAX_PAYLOAD))
            return self.ops.hello_info(self.max_payload, self.window, self.max_bundle)
        if isinstance(msg, m.Begin):
            return self._begin(msg)
        if isinstance(msg, m.BeginLean) and self.lean:
            return self._begin(msg)
        if isinstance(msg, m.Data):
            if self.transfer is not None and self.transfer.lean:
                # Its chunks come as DATA_LEAN (as the C stub has it).
                raise DeviceFault(m.ErrorCode.NO_TRANSFER, f"no transfer {msg.transfer_id}")
            return self._data(msg)
        if isinstance(msg, m.Commit):
            return self._commit(msg)
        if isinstance(msg, m.ListSlots):
            return self._list(msg)
        if isinstance(msg, m.Read):
            data = self.ops.read_slot(msg.sec_tag, msg.slot)
            room = self.host_payload - 13
            piece = data[msg.offset : msg.offset + min(msg.max_len, room)]
            return m.ReadData(msg.sec_tag, msg.slot, len(data), msg.offset, piece)
        if isinstance(msg, m.Delete):
            try:
                scope = m.DeleteScope(msg.scope)
            except ValueError:
                raise DeviceFault(
                    m.ErrorCode.MALFORMED, f"unknown delete scope {msg.scope}"
                ) from None
            if scope is m.DeleteScope.ALL and msg.guard != m.DELETE_ALL_GUARD:
                raise DeviceFault(m.ErrorCode.GUARD, "delete all needs the guard value")
            self.ops.delete(scope, msg.sec_tag, msg.slot)
            return m.Ok(m.MsgType.DELETE)
        if isinstance(msg, m.Keygen):
            return self._keygen(msg)
        if isinstance(msg, m.Reset):
            self.transfer = None
            return m.Ok(m.MsgType.RESET)
        if isinstance(msg, m.ChangeBaud):
            rates = getattr(self.ops, "baud_rates", lambda: ())()
            if msg.baud not in rates:
                raise DeviceFault(m.ErrorCode.UNSUPPORTED, f"no switch to {msg.baud} baud")
            self._baud_to = msg.baud
            return m.Ok(m.MsgType.CHANGE_BAUD)
        if isinstance(msg, m.TlsCheck):
            tls_check = getattr(self.ops, "tls_check", None)
            if tls_check is None:
                raise DeviceFault(m.ErrorCode.UNSUPPORTED, "this device cannot run TLS")
            return tls_check(msg, self.host_payload)
        raise DeviceFault(m.ErrorCode.UNKNOWN_MESSAGE, "")

    def _begin(self, msg: m.Begin | m.BeginLean) -> m.Message:
        t = self.transfer
        lean = isinstance(msg, m.BeginLean)
        digest = msg.digest if isinstance(msg, m.BeginLean) else msg.sha256
        if t and (t.transfer_id, t.total, t.chunk, t.sha256, t.lean) == (
            msg.transfer_id,
            msg.total_size,
            msg.chunk_size,
            digest,
            lean,
        ):
            return m.Ack(t.transfer_id, t.cumulative, t.sack())
        self.transfer = None
        if msg.total_size > self.max_bundle:
            raise DeviceFault(
                m.ErrorCode.TOO_LARGE,
                f"bundle of {msg.total_size} bytes; device takes {self.max_bundle}",
            )
        if msg.total_size == 0 or msg.transfer_id == 0:
            raise DeviceFault(m.ErrorCode.MALFORMED, "empty bundle or transfer id 0")
        largest = m.LEAN_MAX_CHUNK if lean else self.max_payload - m.DATA_OVERHEAD
        if not 0 < msg.chunk_size <= largest:
            raise DeviceFault(m.ErrorCode.MALFORMED, f"chunk size must be 1..{largest}")
        chunks = -(-msg.total_size // msg.chunk_size)
        if lean and chunks > 0xFFFF:
            raise DeviceFault(m.ErrorCode.MALFORMED, "more chunks than DATA_LEAN can number")
        self.transfer = _Transfer(
            msg.transfer_id,
            msg.total_size,
            msg.chunk_size,
            digest,
            bytearray(msg.total_size),
            bytearray(chunks),
            lean=lean,
        )
        return m.Ack(msg.transfer_id, 0, 0)

    def _lean_data(self, body: bytes) -> bytes:
        """DATA_LEAN: answered like DATA, with seq 0 (its frame has none), never cached."""
        try:
            msg = m.decode(body).message
            assert isinstance(msg, m.DataLean)
            t = self.transfer
            if t is None or not t.lean or t.transfer_id != msg.transfer_id:
                raise DeviceFault(m.ErrorCode.NO_TRANSFER, f"no lean transfer {msg.transfer_id}")
            reply = self._data(m.Data(msg.transfer_id, msg.index * t.chunk, msg.chunk))
        except RemoteProtocolError as err:
            reply = m.Error(m.ErrorCode.MALFORMED, m.MsgType.DATA_LEAN, err.message[: m.MAX_TEXT])
        except DeviceFault as fault:
            reply = m.Error(fault.code, m.MsgType.DATA_LEAN, fault.detail)
        return self._send(reply, 0)

    def _data(self, msg: m.Data) -> m.Message:
        t = self.transfer
        if t is None or t.transfer_id != msg.transfer_id:
            raise DeviceFault(m.ErrorCode.NO_TRANSFER, f"no transfer {msg.transfer_id}")
        index, rem = divmod(msg.offset, t.chunk)
        expected = min(t.chunk, t.total - msg.offset) if msg.offset < t.total else 0
        if rem or expected == 0 or len(msg.chunk) != expected:
            return m.Nak(t.transfer_id, t.cumulative, m.NakReason.BAD_OFFSET)
        if index >= t.cumulative_chunks + self.window:
            return m.Nak(t.transfer_id, t.cumulative, m.NakReason.OUT_OF_WINDOW)
        if index >= t.cumulative_chunks and not t.held[index]:
            t.buffer[msg.offset : msg.offset + len(msg.chunk)] = msg.chunk
            t.held[index] = 1
            before = t.cumulative_chunks
            while t.cumulative_chunks < t.chunks and t.held[t.cumulative_chunks]:
                t.cumulative_chunks += 1
            stage = getattr(self.ops, "stage", None)
            if stage is not None and t.cumulative_chunks > before:
                stage(t.transfer_id, memoryview(t.buffer)[: t.cumulative])
        return m.Ack(t.transfer_id, t.cumulative, t.sack())

    def _commit(self, msg: m.Commit) -> m.Message:
        t = self.transfer
        if t is None or t.transfer_id != msg.transfer_id:
            raise DeviceFault(m.ErrorCode.NO_TRANSFER, f"no transfer {msg.transfer_id}")
        if t.cumulative < t.total:
            raise DeviceFault(m.ErrorCode.INCOMPLETE, f"have {t.cumulative} of {t.total} bytes")
        self.transfer = None
        data = bytes(t.buffer)
        if not hashlib.sha256(data).digest().startswith(t.sha256):
            raise DeviceFault(m.ErrorCode.DIGEST_MISMATCH, "bundle digest differs from BEGIN")
        count, digest = self.ops.apply_bundle(data)
        return m.Committed(t.transfer_id, count, digest)

    def _list(self, msg: m.ListSlots) -> m.Message:
        entries = self.ops.list_entries()
        per_page = max(1, (self.host_payload - 5) // m.LIST_ENTRY_SIZE)
        page = tuple(entries[msg.start : msg.start + min(per_page, 255)])
        return m.ListPage(len(entries), msg.start, page)

    def _keygen(self, msg: m.Keygen) -> m.Message:
        if msg.offset == 0:
            self._csr = (msg.sec_tag, self.ops.keygen(msg.sec_tag, msg.subject))
        csr_for = getattr(self, "_csr", None)
        if csr_for is None or csr_for[0] != msg.sec_tag:
            raise DeviceFault(m.ErrorCode.NOT_FOUND, f"no CSR made for sec_tag {msg.sec_tag}")
        csr = csr_for[1]
        room = self.host_payload - 8
        return m.Csr(msg.sec_tag, len(csr), msg.offset, csr[msg.offset : msg.offset + room])
