"""The native dialect: the drive loop that runs provision.link's sans-IO host over a Transport.

This is the only place where native-protocol timeouts, retries and the clock live. The clock
is the transport's own when it has one (`clock()`, the sim:// pair's virtual time) so that
simulated sessions check time bounds without sleeping.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, Slot, SlotType
from provision.device import DeviceInfo, Progress, SlotInfo, WriteResult
from provision.errors import DeviceError, InputError, LinkError, PolicyError, ProvisionError
from provision.link import messages as m
from provision.link.host import HOST_MAX_PAYLOAD, HostLink, TransferSender, device_error
from provision.tls.report import HandshakeReport
from provision.trace import TraceLog, env_enabled
from provision.transport.base import Transport, transport_clock

Trace = Callable[[str, m.Frame], None]  # ("tx" | "rx", frame)


def _meaning(frame: m.Frame) -> str:
    msg = frame.message
    fields = msg.fields()
    for key in ("chunk", "data"):
        if key in fields:
            fields[key] = f"<{len(getattr(msg, key))} bytes>"
    return f"seq={frame.seq} {msg.TYPE.name} {fields}"


def frame_trace(log: TraceLog) -> Trace:
    """`--trace` for the native link: each frame body (header + payload, before COBS and
    CRC) as a hex dump under its decoded fields. A DATA chunk is a slice of the bundle, so
    it may hold key bytes: it shows as its length only (its CRC is not shown either: a CRC
    over mostly known bytes gives away the few unknown ones)."""

    def trace(direction: str, frame: m.Frame) -> None:
        try:
            # Received frames are re-encoded: a parse rebuilds to the same bytes.
            body = m.encode(frame.message, frame.seq)
        except ProvisionError:
            body = b""
        redact = None
        if isinstance(frame.message, m.Data):
            redact = max(0, len(body) - len(frame.message.chunk))
        log.frame(direction, body, _meaning(frame), redact_from=redact)

    return trace


class NativeSession:
    name = "native"

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = 2.0,
        retries: int = 5,
        trace: Trace | TraceLog | None = None,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.clock = transport_clock(transport)
        if trace is None and env_enabled():
            trace = TraceLog(self.clock)
        self._log = trace if isinstance(trace, TraceLog) else None
        self.trace = frame_trace(trace) if isinstance(trace, TraceLog) else trace
        baud = getattr(transport, "baudrate", None)
        self.byte_time = 10.0 / baud if baud else 0.0
        self.link = HostLink()
        self.bytes_sent = 0
        self._line_free = 0.0
        # Flush noise out of the device's receive buffer (an empty frame is ignored).
        self._write(b"\x00")
        self.hello = self._request(m.Hello(m.PROTOCOL_VERSION, HOST_MAX_PAYLOAD), m.HelloInfo)

    @classmethod
    def probe(cls, transport: Transport, timeout: float) -> bool:
        link = HostLink()
        clock = transport_clock(transport)
        hello = m.Hello(m.PROTOCOL_VERSION, HOST_MAX_PAYLOAD)
        transport.write(b"\x00" + link.frame(hello, link.next_seq()))
        deadline = clock() + min(timeout, 1.0)
        while (left := deadline - clock()) > 0:
            data = transport.read(4096, left)
            if any(isinstance(f.message, m.HelloInfo) for f in link.receive_data(data)):
                return True
        return False

    # -- IO helpers
    def _write(self, data: bytes) -> float:
        """Write and return when the last byte should have reached the device."""
        self.transport.write(data)
        self.bytes_sent += len(data)
        now = self.clock()
        self._line_free = max(now, self._line_free) + len(data) * self.byte_time
        return self._line_free

    def _send(self, msg: m.Message, seq: int) -> float:
        if self.trace:
            self.trace("tx", m.Frame(seq, msg))
        return self._write(self.link.frame(msg, seq))

    def _receive(self, timeout: float) -> list[m.Frame]:
        data = self.transport.read(4096, max(0.0, timeout))
        bad = self.link.bad_frames
        frames = self.link.receive_data(data) if data else []
        if self.trace:
            for f in frames:
                self.trace("rx", f)
        if self._log is not None and self.link.bad_frames > bad:
            self._log.note("rx", f"{self.link.bad_frames - bad} damaged frame(s) dropped")
        return frames

    def _request(self, msg: m.Message, expect: type[m.Message]) -> m.Message:
        """One request, retried with the same seq (the device answers a repeat from its cache)."""
        seq = self.link.next_seq()
        for _attempt in range(self.retries + 1):
            arrival = self._send(msg, seq)
            deadline = max(arrival, self.clock()) + self.timeout
            resend = False
            while not resend and (left := deadline - self.clock()) > 0:
                for frame in self._receive(left):
                    reply = frame.message
                    if isinstance(reply, m.Nak) and frame.seq == 0:
                        resend = reply.reason == m.NakReason.BAD_FRAME
                        continue
                    if frame.seq != seq:
                        continue  # a late answer to something earlier
                    if isinstance(reply, m.Error):
                        raise device_error(reply)
                    if not isinstance(reply, expect):
                        raise LinkError(f"{msg.TYPE.name}: unexpected answer {reply.TYPE.name}")
                    return reply
        raise LinkError(
            f"no answer to {msg.TYPE.name} after {self.retries + 1} tries "
            f"({self.timeout:g} s each): {self.link.no_answer_hint()}",
            code="link.timeout",
        )

    # -- DialectSession
    def info(self) -> DeviceInfo:
        h = self.hello
        features = [f.name.lower() for f in m.Feature if f and h.features & f]  # type: ignore[union-attr]
        return DeviceInfo(
            dialect=self.name,
            device_id=h.uid.hex(),
            firmware=h.firmware,
            details={
                "protocol": h.version,
                "max_payload": h.max_payload,
                "window": h.window,
                "max_bundle": h.max_bundle,
                "max_slots": h.max_slots,
                "max_tags": h.max_tags,
                "max_slot_size": h.max_slot_size,
                "features": features,
            },
        )

    def list(self) -> list[SlotInfo]:
        out: list[SlotInfo] = []
        start = 0
        while True:
            page = self._request(m.ListSlots(start), m.ListPage)
            assert isinstance(page, m.ListPage)
            for e in page.entries:
                try:
                    slot_type = SlotType(e.slot)
                except ValueError:
                    continue  # a slot type this host does not know
                out.append(SlotInfo(e.sec_tag, slot_type, e.size, e.sha256))
            start += len(page.entries)
            if not page.entries or start >= page.total:
                return out

    def read(self, sec_tag: int, slot_type: SlotType) -> bytes:
        if slot_type.is_secret or not slot_type.is_certificate:
            raise InputError(f"{slot_type.label} cannot be read back from a device")
        data = bytearray()
        while True:
            room = min(self.hello.max_payload, HOST_MAX_PAYLOAD) - 13
            reply = self._request(m.Read(sec_tag, int(slot_type), len(data), room), m.ReadData)
            assert isinstance(reply, m.ReadData)
            if reply.offset != len(data):
                raise LinkError("READ: device answered for another offset")
            data += reply.data
            if len(data) >= reply.total or not reply.data:
                return bytes(data[: reply.total])

    def delete(self, sec_tag: int | None, slot_type: SlotType | None) -> None:
        if sec_tag is None:
            req = m.Delete(m.DeleteScope.ALL, 0, 0, m.DELETE_ALL_GUARD)
        elif slot_type is None:
            req = m.Delete(m.DeleteScope.TAG, sec_tag, 0, 0)
        else:
            req = m.Delete(m.DeleteScope.SLOT, sec_tag, int(slot_type), 0)
        self._request(req, m.Ok)

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        if not self.hello.features & m.Feature.KEYGEN:
            raise PolicyError("this device cannot generate keys (no KEYGEN feature)")
        csr = bytearray()
        while True:
            reply = self._request(m.Keygen(sec_tag, len(csr), subject or ""), m.Csr)
            assert isinstance(reply, m.Csr)
            csr += reply.data
            if len(csr) >= reply.total or not reply.data:
                return bytes(csr[: reply.total])

    def stored_form(self, slot: Slot) -> bytes:
        return slot.data  # the native device stores the bundle's bytes as they are

    def tls_check(
        self, sec_tag: int, host: str, port: int, *, tls_version: str | None, timeout: float
    ) -> HandshakeReport:
        """TLS_CHECK: the device handshakes with its own slots (feature 0x0010: simulators)."""
        from provision.tls import wire
        from provision.tls.device_check import LINK_MARGIN, TLSCheckUnsupported

        server = f"{host}:{port}"
        if not self.hello.features & m.Feature.TLS_CHECK:
            why = f"{self.hello.firmware!r} does not announce the TLS_CHECK feature"
            raise TLSCheckUnsupported("this device", why, sec_tag, server)
        request = m.TlsCheck(
            sec_tag, port, wire.tls_code(tls_version), min(int(timeout * 1000), 0xFFFF), host
        )
        # The device answers only when its handshake is over: wait longer than it may take.
        saved, self.timeout = self.timeout, timeout + LINK_MARGIN
        try:
            reply = self._request(request, m.TlsResult)
        finally:
            self.timeout = saved
        return wire.report_from_result(server, reply)

    def close(self) -> None:
        self.transport.close()

    # -- write
    def preflight(self, credentials: CredentialSet) -> None:
        """Refuse, before any byte is sent, what this device cannot hold."""
        h = self.hello
        keys = [s.key for s in credentials]
        if len(set(keys)) != len(keys):
            raise PolicyError(
                "a native device holds one root_ca per sec_tag: put extra roots in other tags"
            )
        for s in credentials:
            if len(s.data) > h.max_slot_size:
                raise PolicyError(
                    f"sec_tag {s.sec_tag} {s.type.label} is {len(s.data)} bytes "
                    f"(device slot limit {h.max_slot_size})"
                )
        if len(credentials.sec_tags) > h.max_tags:
            raise PolicyError(f"{len(credentials.sec_tags)} sec_tags; device holds {h.max_tags}")
        if len(credentials) > h.max_slots:
            raise PolicyError(f"{len(credentials)} slots; device holds {h.max_slots}")

    def write(self, credentials: CredentialSet, progress: Progress | None = None) -> WriteResult:
        return self.write_bundle(bundle_format.encode(credentials), progress)

    def write_bundle(self, bundle: bytes, progress: Progress | None = None) -> WriteResult:
        """Send bundle bytes (signed or not), COMMIT, and check the device's set digest."""
        credentials = bundle_format.decode(bundle).credentials
        self.preflight(credentials)
        h = self.hello
        if len(bundle) > h.max_bundle:
            raise PolicyError(f"bundle of {len(bundle)} bytes; device takes {h.max_bundle}")
        start = self.clock()
        sent_before = self.bytes_sent
        result = self._transfer(bundle, progress)
        expected = m.set_digest([(s.sec_tag, int(s.type), s.data) for s in credentials])
        if result.set_digest != expected or result.slot_count != len(credentials):
            raise DeviceError(
                "the device's digests after COMMIT differ from the bundle: run `provision "
                "device verify` to see which slot",
                code="device.verify_failed",
            )
        written = tuple(
            SlotInfo(s.sec_tag, s.type, len(s.data), hashlib.sha256(s.data).digest())
            for s in credentials
        )
        return WriteResult(written, self.bytes_sent - sent_before, self.clock() - start)

    def _transfer(self, bundle: bytes, progress: Progress | None) -> m.Committed:
        h = self.hello
        sha = hashlib.sha256(bundle).digest()
        chunk = min(h.max_payload, HOST_MAX_PAYLOAD) - m.DATA_OVERHEAD
        rto = min(self.timeout, 0.25 + 4 * (chunk + 20) * self.byte_time)
        sender = TransferSender(
            random.randint(1, 0xFFFF), bundle, chunk, h.window, rto=rto, rto_max=self.timeout
        )
        frame_bytes = len(bundle) + (len(sender.chunks) + 2) * 32
        budget = 2 * (self.retries + 1) * self.timeout + 4 * frame_bytes * self.byte_time + 1.0
        deadline = self.clock() + budget
        restarts = 0
        epoch: set[int] = set()  # seqs sent since the latest BEGIN
        begin_seq = self._begin(sender, sha, epoch)
        commit_seq: int | None = None
        commit_deadline = 0.0
        commit_tries = 0
        wait_complete = False  # after INCOMPLETE: COMMIT again only once all is held
        reported = -1
        while True:
            now = self.clock()
            if now >= deadline:
                raise LinkError(
                    f"transfer did not finish within {budget:.1f} s "
                    f"({sender.acked_bytes} of {sender.total} bytes acknowledged)",
                    code="link.timeout",
                )
            timeouts_before = sender.timeouts
            for data in sender.due(now):
                seq = self.link.next_seq()
                epoch.add(seq)
                sender.sent(data.offset, self._send(data, seq))
            if sender.timeouts > timeouts_before:
                if sender.timeouts > self.retries:
                    raise LinkError(
                        f"the device stopped answering during the transfer "
                        f"({sender.acked_bytes} of {sender.total} bytes acknowledged)",
                        code="link.timeout",
                    )
                # Maybe the device restarted or the link dropped: BEGIN again resumes or
                # restarts, as the device's answer will tell.
                begin_seq = self._begin(sender, sha, epoch)
            ready = sender.complete if wait_complete else sender.all_sent
            if ready and commit_seq is None:
                commit_seq = self.link.next_seq()
                commit_deadline = self._send(m.Commit(sender.transfer_id), commit_seq) + (
                    sender.rto
                )
            elif commit_seq is not None and now >= commit_deadline:
                commit_tries += 1
                if commit_tries > self.retries:
                    raise LinkError("no answer to COMMIT", code="link.timeout")
                commit_deadline = self._send(m.Commit(sender.transfer_id), commit_seq) + (
                    self.timeout
                )
            waits = [t for t in (sender.next_deadline(), deadline) if t is not None]
            if commit_seq is not None:
                waits.append(commit_deadline)
            for frame in self._receive(min(waits) - self.clock()):
                msg = frame.message
                if isinstance(msg, m.Ack):
                    sender.on_ack(msg, self.clock(), authoritative=frame.seq == begin_seq)
                elif isinstance(msg, m.Nak):
                    sender.on_nak(msg, self.clock())
                elif isinstance(msg, m.Committed) and frame.seq == commit_seq:
                    if progress:
                        progress(sender.total, sender.total)
                    return msg
                elif isinstance(msg, m.Error):
                    code = msg.code
                    if frame.seq == commit_seq and code == m.ErrorCode.INCOMPLETE:
                        commit_seq = None  # send COMMIT again once everything is held
                        wait_complete = True
                        continue
                    restart = code == m.ErrorCode.NO_TRANSFER and (
                        frame.seq in epoch or frame.seq == commit_seq
                    )
                    if restart:
                        restarts += 1
                        if restarts > self.retries:
                            raise LinkError(
                                "the device keeps losing the transfer (restarting?)",
                                code="link.restarts",
                            )
                        sender.restart()
                        commit_seq = None
                        begin_seq = self._begin(sender, sha, epoch)
                    elif frame.seq in epoch or frame.seq in (begin_seq, commit_seq):
                        raise device_error(msg)
            if progress and sender.acked_bytes != reported:
                reported = sender.acked_bytes
                progress(reported, sender.total)

    def _begin(self, sender: TransferSender, sha: bytes, epoch: set[int]) -> int:
        epoch.clear()
        seq = self.link.next_seq()
        epoch.add(seq)
        self._send(sender.begin(sha), seq)
        return seq
