"""The native dialect: the drive loop that runs provision.link's sans-IO host over a Transport.

This is the only place where native-protocol timeouts, retries and the clock live. The clock
is the transport's own when it has one (`clock()`, the sim:// pair's virtual time) so that
simulated sessions check time bounds without sleeping.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable
from typing import ClassVar, TypeVar

from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, SlotType
from provision.dialects import TARGETS, mbedtls
from provision.dialects.base import (
    Capability,
    DeviceInfo,
    DialectProfile,
    Holdings,
    Progress,
    Refusal,
    SentBytes,
    SlotInfo,
    WriteResult,
)
from provision.dialects.drive import retried
from provision.errors import InputError, LinkError, PolicyError, ProvisionError, VerifyFailed
from provision.link import messages as m
from provision.link.chunking import ChunkSizer, lean_largest, short_tail
from provision.link.host import HOST_LEAN_CHUNK, HOST_MAX_PAYLOAD, HostLink, device_error
from provision.link.transfer import HostTransfer, Limits, State
from provision.slot_view import digest_is_secret
from provision.trace import TraceLog, env_enabled
from provision.transport.base import Transport, discard_output, send, transport_clock

NAME = "native"
Trace = Callable[[str, m.Frame], None]  # ("tx" | "rx", frame)
_Reply = TypeVar("_Reply", bound=m.Message)


def _meaning(frame: m.Frame) -> str:
    msg = frame.message
    fields = msg.fields()
    for key in ("chunk", "data"):
        if key in fields:
            fields[key] = f"<{len(getattr(msg, key))} bytes>"
    if isinstance(msg, m.ListPage):
        for shown, entry in zip(fields["entries"], msg.entries, strict=True):
            if digest_is_secret(entry.slot):
                shown["sha256"] = "<secret: not shown>"  # provision.slot_view
    for key in _SET_DIGESTS.get(type(msg), ()):
        # Over the whole set: with every other slot public, as good as a PSK's own digest.
        fields[key] = "<covers the set's secrets: not shown>"
    return f"seq={frame.seq} {msg.TYPE.name} {fields}"


# Digests over a whole bundle or set (each message's last field, before Terminated).
_SET_DIGESTS: dict[type, tuple[str, ...]] = {
    m.Begin: ("sha256",),
    m.BeginLean: ("digest",),
    m.Committed: ("set_digest",),
}


_ENTRY_SIZE = m.ListEntry.sizeof()
_DIGEST_AT = _ENTRY_SIZE - m.DIGEST_SIZE  # sha256 is a ListEntry's last field


def _secret_digest_spans(msg: m.Message, body: bytes) -> list[tuple[int, int]]:
    """Where a LIST_PAGE body holds the digests of secret slots (entries end the body), or
    a BEGIN or COMMITTED its digest over the set."""
    if type(msg) in _SET_DIGESTS:
        size = len(getattr(msg, _SET_DIGESTS[type(msg)][0]))
        return [(len(body) - size, len(body))]
    if not isinstance(msg, m.ListPage):
        return []
    first = len(body) - len(msg.entries) * _ENTRY_SIZE
    return [
        (at, at + m.DIGEST_SIZE)
        for i, entry in enumerate(msg.entries)
        if digest_is_secret(entry.slot)
        for at in [first + i * _ENTRY_SIZE + _DIGEST_AT]
    ]


def frame_trace(log: TraceLog) -> Trace:
    """`--trace` for the native link: each frame body (header + payload, before COBS and
    CRC) as a hex dump under its decoded fields. A DATA chunk is a slice of the bundle, so
    it may hold key bytes: it shows as its length only (its CRC is not shown either: a CRC
    over mostly known bytes gives away the few unknown ones). A LIST_PAGE shows no secret
    slot's digest, decoded or in the dump (provision.slot_view), BEGIN and COMMITTED not
    their digests over the set."""

    def trace(direction: str, frame: m.Frame) -> None:
        try:
            # Received frames are re-encoded: a parse rebuilds to the same bytes.
            body = m.encode(frame.message, frame.seq)
        except ProvisionError:
            body = b""
        redact = None
        if isinstance(frame.message, m.Data | m.DataLean):
            redact = max(0, len(body) - len(frame.message.chunk))
        hide = _secret_digest_spans(frame.message, body)
        log.frame(direction, body, _meaning(frame), redact_from=redact, hide=hide)

    return trace


def _refusals(credentials: CredentialSet) -> list[Refusal]:
    # Our stub's TLS stack, where it has one, is mbedTLS.
    return _one_per_tag(credentials) + mbedtls.advice(credentials)


def _one_per_tag(credentials: CredentialSet) -> list[Refusal]:
    seen: set[tuple[int, SlotType]] = set()
    out = []
    for slot in credentials:
        if slot.key in seen:
            out.append(
                Refusal(
                    "slot.duplicate",
                    f"sec_tag {slot.sec_tag}: a native device holds one {slot.type.label} per "
                    "sec_tag: put extra roots in other tags",
                    slot.sec_tag,
                    slot.type,
                )
            )
        seen.add(slot.key)
    return out


def _stored_forms(credentials: CredentialSet) -> dict[tuple[int, SlotType], bytes]:
    # The native device stores the bundle's bytes as they are.
    return {slot.key: slot.data for slot in credentials}


PROFILE = DialectProfile(
    dialect=NAME,
    target=TARGETS[NAME],
    description="our link protocol: windowed, CRC-checked, atomic commit (firmware_stub/)",
    slot_types=frozenset(SlotType),
    capabilities=frozenset(Capability) - {Capability.ATTESTATION},
    refusals=_refusals,
    stored_forms=_stored_forms,
    encodings="the bundle as packed (DER or PEM per item); limits announced in HELLO",
    guarantee="atomic: one COMMIT switches flash banks, so a cut at any byte leaves the old "
    "set or the new one, whole",
)
# What a device must announce in HELLO for the capability to hold.
_FEATURE_CAPABILITY = {
    m.Feature.KEYGEN: Capability.KEYGEN,
    m.Feature.READ: Capability.READ_BACK,
    m.Feature.TLS_CHECK: Capability.DEVICE_TLS,
    m.Feature.BAUD: Capability.LINE_RATE,
}


# A HELLO_INFO's size on the wire, about (the firmware string and rate list vary).
PROBE_ANSWER_BYTES = 96

# The longest an interrupted session waits for the line to clear (1 KB frames, a window of
# them at 1200 baud would be a minute: past this, the next command's retries take over).
SETTLE_LIMIT = 15.0


class NativeSession:
    name: ClassVar[str] = NAME
    profile: ClassVar[DialectProfile] = PROFILE
    # A frame cut anywhere is dropped by the device (COBS, CRC) once a delimiter ends it:
    # queued bytes may be discarded on interrupt (transport.base.InterruptibleTransport).
    CUT_RESYNC: ClassVar[bytes | None] = b"\x00"

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = 2.0,
        retries: int = 5,
        trace: Trace | TraceLog | None = None,
        pipeline: bool = False,
        silence_hint: str = "",
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
        self._opened_at_baud: int | None = baud
        self.link = HostLink()
        self.bytes_sent = 0
        # The DATA chunk size learnt from losses lasts the session (provision.link.chunking);
        # adaptive_chunks False keeps the largest (benches compare the two).
        self.adaptive_chunks = True
        self.chunk_sizer: ChunkSizer | None = None
        self._line_free = 0.0
        # Flush noise out of the device's receive buffer (an empty frame is ignored).
        self._write(b"\x00")
        self._hello: m.HelloInfo | None = None
        # Said after "no answer to HELLO" when that comes at the first use, not the open
        # (a pipelined open; device.open gives it for a named dialect).
        self.silence_hint = silence_hint
        self._hello_seq = 0
        self._hello_deadline = 0.0
        hello = m.Hello(m.PROTOCOL_VERSION, HOST_MAX_PAYLOAD)
        if pipeline:
            # The session open is pipelined: HELLO goes out now and its answer is awaited
            # when something needs it; a write sends its transfer meanwhile (_transfer).
            self._hello_seq = self.link.next_seq()
            self._hello_deadline = self._send(hello, self._hello_seq) + self.timeout
        else:
            self._hello = self._request(hello, m.HelloInfo)

    @property
    def hello(self) -> m.HelloInfo:
        """The device's HELLO_INFO (waited for here when the open was pipelined)."""
        if self._hello is None:
            self._await_hello()
        assert self._hello is not None
        return self._hello

    @hello.setter
    def hello(self, info: m.HelloInfo) -> None:
        self._hello = info

    def _take_hello(self, frames: list[m.Frame]) -> tuple[list[m.Frame], bool]:
        """Take the pipelined HELLO's answer out of `frames`: (the other frames, whether
        the HELLO arrived damaged and must go again)."""
        rest, resend = [], False
        for f in frames:
            if self._hello is None and f.seq == self._hello_seq:
                if isinstance(f.message, m.HelloInfo):
                    self._hello = f.message
                    continue
                if isinstance(f.message, m.Error):
                    raise device_error(f.message)
            if self._hello is None and isinstance(f.message, m.Nak) and f.seq == 0:
                resend = resend or f.message.reason == m.NakReason.BAD_FRAME
            rest.append(f)
        return rest, resend

    def _await_hello(self) -> None:
        """Wait for the pipelined HELLO's answer; without it by its timeout (or told it
        arrived damaged), HELLO is asked again like any request. Other frames are dropped:
        they answer a transfer sent before the device was known."""
        resend = False
        while self._hello is None and not resend:
            left = self._hello_deadline - self.clock()
            if left <= 0:
                break
            _, resend = self._take_hello(self._receive(left))
        if self._hello is None:
            hello = m.Hello(m.PROTOCOL_VERSION, HOST_MAX_PAYLOAD)
            tries = max(1, self.retries)  # the pipelined HELLO was the first
            try:
                self._hello = self._request(hello, m.HelloInfo, tries=tries)
            except LinkError as err:
                if err.code != "link.timeout":
                    raise
                raise LinkError(
                    f"no answer to HELLO after {1 + tries} tries ({self.timeout:g} s each): "
                    f"{self.link.no_answer_hint()}{self.silence_hint}",
                    code=err.code,
                ) from None

    @classmethod
    def probe(cls, transport: Transport, timeout: float) -> bool:
        link = HostLink()
        clock = transport_clock(transport)
        hello = m.Hello(m.PROTOCOL_VERSION, HOST_MAX_PAYLOAD)
        frame = b"\x00" + link.frame(hello, link.next_seq())
        transport.write(frame)
        # A second of patience, plus the exchange's own line time: at 1200 baud HELLO and
        # its answer take most of a second on the wire.
        baud = getattr(transport, "baudrate", None)
        wire = (len(frame) + PROBE_ANSWER_BYTES) * 10.0 / baud if baud else 0.0
        deadline = clock() + min(timeout, 1.0) + wire
        while (left := deadline - clock()) > 0:
            data = transport.read(4096, left)
            # Any frame that passes its CRC is this protocol: a HELLO_INFO, or a device
            # still answering an earlier session's frames (the session's HELLO retries
            # wait for it), never a shell's or a modem's text.
            if link.receive_data(data):
                return True
        return False

    @staticmethod
    def recognises(data: bytes) -> bool:
        """Whether `data` holds a frame of this protocol that passes its CRC (what `auto`
        reports when the probe got frames but no HELLO_INFO)."""
        return bool(HostLink().receive_data(data))

    # -- IO helpers
    def _write(self, data: bytes, sent: Callable[[int], None] | None = None) -> float:
        """Write and return when the last byte should have reached the device; `sent` hears
        of the bytes as they leave. Counted as on the line before they go: a write cut short
        in the middle (Ctrl-C while a long frame drains) is still waited for by `settle`."""
        self.bytes_sent += len(data)
        now = self.clock()
        self._line_free = max(now, self._line_free) + len(data) * self.byte_time
        send(self.transport, data, sent)
        return self._line_free

    def _take_back_output(self) -> None:
        """Drop the bytes written but not yet sent (a lean chunk a device without LEAN would
        only refuse), where the port can (tcflush), and end the cut frame with a delimiter."""
        if not discard_output(self.transport):
            return
        self._line_free = self.clock()
        self._write(b"\x00")

    def _send(
        self, msg: m.Message, seq: int, bar: SentBytes | None = None, chunk_size: int = 0
    ) -> float:
        if self.trace:
            self.trace("tx", m.Frame(seq, msg))
        frame = self.link.frame(msg, seq)
        if bar is None or not isinstance(msg, m.Data | m.DataLean):
            return self._write(frame)
        # A DATA frame's bytes count as its chunk's, in proportion, as they leave (a lean
        # chunk is named by its index in chunks of `chunk_size`).
        offset = msg.offset if isinstance(msg, m.Data) else msg.index * chunk_size
        on_sent = bar.part(offset)
        assert on_sent is not None
        return self._write(frame, lambda n: on_sent(n * len(msg.chunk) // len(frame)))

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

    def _request(self, msg: m.Message, expect: type[_Reply], *, tries: int | None = None) -> _Reply:
        """One request, retried with the same seq (the device answers a repeat from its cache)."""
        seq = self.link.next_seq()
        sends = self.retries + 1 if tries is None else tries

        def attempt() -> _Reply | None:
            arrival = self._send(msg, seq)
            deadline = max(arrival, self.clock()) + self.timeout
            while (left := deadline - self.clock()) > 0:
                for frame in self._receive(left):
                    reply = frame.message
                    if isinstance(reply, m.Nak) and frame.seq == 0:
                        if reply.reason == m.NakReason.BAD_FRAME:
                            return None  # our frame arrived damaged: send it again now
                        continue
                    if frame.seq != seq:
                        continue  # a late answer to something earlier
                    if isinstance(reply, m.Error):
                        raise device_error(reply)
                    if not isinstance(reply, expect):
                        raise LinkError(
                            f"{msg.TYPE.name}: unexpected answer {reply.TYPE.name}",
                            code="link.unexpected",
                        )
                    return reply
            return None

        return retried(
            attempt,
            attempts=sends,
            no_answer=lambda: LinkError(
                f"no answer to {msg.TYPE.name} after {sends} tries "
                f"({self.timeout:g} s each): {self.link.no_answer_hint()}",
                code="link.timeout",
            ),
        )

    # -- line rate
    def switch_baud(self, rate: int | None) -> int | None:
        """Move the session to `rate` (None: the fastest the device offers): CHANGE_BAUD,
        answered at the old rate, then both sides switch and HELLO at the new rate confirms.
        Without an answer the port goes back to the old rate (the device does too, at the
        first bad frame) and the session carries on there. A device that advertises no
        rates, or a port without a line rate (socket://), is never asked. Returns the rate
        in use."""
        old = getattr(self.transport, "baudrate", None)
        rates = self.hello.rates if self.hello.features & m.Feature.BAUD else ()
        if not rates or not old:
            return old
        if rate is None:
            rate = max(rates)
        elif rate not in rates:
            offered = ", ".join(str(r) for r in rates)
            raise PolicyError(
                f"the device cannot switch to {rate} baud (it offers {offered})",
                code="device.baud",
            )
        if rate == old:
            return old
        self._request(m.ChangeBaud(rate), m.Ok)
        self._set_rate(rate)
        hello = m.Hello(m.PROTOCOL_VERSION, HOST_MAX_PAYLOAD)
        saved, self.timeout = self.timeout, min(self.timeout, 0.5)
        try:
            reply = self._request(hello, m.HelloInfo, tries=2)
        except LinkError:
            reply = None
        finally:
            self.timeout = saved
        if reply is None:
            if self._log is not None:
                self._log.note("--", f"no answer at {rate} baud: back to {old}")
            self._set_rate(old)
            reply = self._request(hello, m.HelloInfo)
            rate = old
        assert isinstance(reply, m.HelloInfo)
        self.hello = reply
        return rate

    def _set_rate(self, rate: int) -> None:
        self.transport.baudrate = rate  # type: ignore[attr-defined]
        self.byte_time = 10.0 / rate

    # -- DialectSession
    def info(self) -> DeviceInfo:
        h = self.hello
        features = [f.name.lower() for f in m.Feature if f and h.features & f and f.name]
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
                "baud_rates": list(h.rates),
                "baud": getattr(self.transport, "baudrate", None),
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
            raise InputError(
                f"{slot_type.label} cannot be read back from a device", code="device.secret_slot"
            )
        data = bytearray()
        while True:
            room = min(self.hello.max_payload, HOST_MAX_PAYLOAD) - 13
            reply = self._request(m.Read(sec_tag, int(slot_type), len(data), room), m.ReadData)
            assert isinstance(reply, m.ReadData)
            if reply.offset != len(data):
                raise LinkError("READ: device answered for another offset", code="link.unexpected")
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

    @property
    def capabilities(self) -> frozenset[Capability]:
        features = self.hello.features
        return frozenset(
            c
            for c in self.profile.capabilities
            if all(features & f for f, needs in _FEATURE_CAPABILITY.items() if needs is c)
        )

    def can(self, capability: Capability) -> bool:
        """Whether the device can do `capability`, waiting for HELLO_INFO only when that
        depends on what it announces (a pipelined open's transfer goes out meanwhile)."""
        if capability not in _FEATURE_CAPABILITY.values():
            return capability in self.profile.capabilities
        return capability in self.capabilities

    def check_keygen(self, sec_tag: int, subject: str | None) -> None:
        if not self.hello.features & m.Feature.KEYGEN:
            raise PolicyError(
                "this device cannot generate keys (no KEYGEN feature)", code="device.no_keygen"
            )
        room = min(self.hello.max_payload, HOST_MAX_PAYLOAD)
        try:
            size = len(m.encode(m.Keygen(sec_tag, 0, subject or ""), 0))
        except ProvisionError:
            size = room + 1
        if size > room:
            raise PolicyError(
                f"--subject is too long for one KEYGEN request ({len(subject or '')} "
                f"characters; the device takes frames of {room} bytes)",
                code="keygen.subject",
            )

    def keygen(self, sec_tag: int, subject: str | None = None) -> bytes:
        self.check_keygen(sec_tag, subject)
        csr = bytearray()
        while True:
            reply = self._request(m.Keygen(sec_tag, len(csr), subject or ""), m.Csr)
            assert isinstance(reply, m.Csr)
            csr += reply.data
            if len(csr) >= reply.total or not reply.data:
                return bytes(csr[: reply.total])

    def request(
        self, msg: m.Message, expect: type[_Reply], *, timeout: float | None = None
    ) -> _Reply:
        """One request of the caller's, retried like every other; `timeout` s per try."""
        saved = self.timeout
        if timeout is not None:
            self.timeout = timeout
        try:
            return self._request(msg, expect)
        finally:
            self.timeout = saved

    def close(self) -> None:
        self.restore_baud()
        self.transport.close()

    def restore_baud(self) -> None:
        """Put the device and the port back at the rate the session opened at, the rate the
        next session opens at (best effort: a device also goes back by itself when frames
        at that rate keep arriving garbled). The session stays open."""
        if self._opened_at_baud and self.transport_baud() != self._opened_at_baud:
            with contextlib.suppress(ProvisionError):
                saved, self.timeout = self.timeout, min(self.timeout, 0.2)
                try:
                    self._request(m.ChangeBaud(self._opened_at_baud), m.Ok, tries=1)
                finally:
                    self.timeout = saved
            with contextlib.suppress(ProvisionError):
                self._set_rate(self._opened_at_baud)

    def settle(self, limit: float = SETTLE_LIMIT) -> None:
        """After an exchange cut short (Ctrl-C): drop what the port has not sent yet, end a
        cut frame, and wait until what is already on the line has reached the device and its
        answers have stopped (at most `limit` s). Without this, at 1200 baud the next
        command's probe met a device still reading seconds of this one's DATA frames."""
        discard_output(self.transport)
        self._write(b"\x00")
        deadline = self.clock() + limit
        on_line_until = min(self._line_free, deadline)
        quiet = max(0.05, 64 * self.byte_time)  # a reply's worth of silence
        while (now := self.clock()) < deadline:
            wait = on_line_until - now if now < on_line_until else quiet
            if not self.transport.read(4096, max(wait, 0.0)) and now >= on_line_until:
                return

    def transport_baud(self) -> int | None:
        return getattr(self.transport, "baudrate", None)

    # -- write
    def preflight(self, credentials: CredentialSet) -> None:
        """Refuse, before any byte is sent, what this device cannot hold."""
        h = self.hello
        refusals = _one_per_tag(credentials)
        if refusals:
            raise PolicyError(refusals[0].message, code=refusals[0].code)
        for s in credentials:
            if len(s.data) > h.max_slot_size:
                raise PolicyError(
                    f"sec_tag {s.sec_tag} {s.type.label} is {len(s.data)} bytes "
                    f"(device slot limit {h.max_slot_size})",
                    code="size.too_large",
                )
        if len(credentials.sec_tags) > h.max_tags:
            raise PolicyError(
                f"{len(credentials.sec_tags)} sec_tags; device holds {h.max_tags}",
                code="size.too_many_tags",
            )
        if len(credentials) > h.max_slots:
            raise PolicyError(
                f"{len(credentials)} slots; device holds {h.max_slots}", code="size.too_many_slots"
            )

    def write(
        self,
        credentials: CredentialSet,
        progress: Progress | None = None,
        *,
        held: Holdings | None = None,
    ) -> WriteResult:
        return self.write_bundle(bundle_format.encode(credentials), progress)

    def _check_fits(self, credentials: CredentialSet, bundle: bytes) -> None:
        self.preflight(credentials)
        h = self.hello
        if len(bundle) > h.max_bundle:
            raise PolicyError(
                f"bundle of {len(bundle)} bytes; device takes {h.max_bundle}", code="size.too_large"
            )

    def write_bundle(
        self, bundle: bytes, progress: Progress | None = None, *, held: Holdings | None = None
    ) -> WriteResult:
        """Send bundle bytes (signed or not), COMMIT, and check the device's set digest."""
        credentials = bundle_format.decode(bundle).credentials
        start = self.clock()
        sent_before = self.bytes_sent
        result = None
        if self._hello is None:
            # HELLO_INFO not in yet: start a lean transfer now, COMMIT once it is in and
            # the set fits (None: the device has no LEAN, so a classic transfer follows).
            result = self._transfer(bundle, progress, credentials=credentials)
        if result is None:
            self._check_fits(credentials, bundle)
            result = self._transfer(bundle, progress)
        assert result is not None
        expected = m.set_digest([(s.sec_tag, int(s.type), s.data) for s in credentials])
        if result.set_digest != expected or result.slot_count != len(credentials):
            raise VerifyFailed(
                "the device's digests after COMMIT differ from the bundle: run `provision "
                "device verify` to see which slot"
            )
        written = tuple(
            SlotInfo(s.sec_tag, s.type, len(s.data), hashlib.sha256(s.data).digest())
            for s in credentials
        )
        # COMMITTED's set digest is the device's own over what it stored: the verify.
        return WriteResult(
            written, self.bytes_sent - sent_before, self.clock() - start, confirmed=True
        )

    def _transfer(
        self,
        bundle: bytes,
        progress: Progress | None,
        *,
        credentials: CredentialSet | None = None,
    ) -> m.Committed | None:
        """The drive loop of one transfer: the state machine (provision.link.transfer) says
        what to send and when to wake up; this moves the bytes and keeps the time.

        With the session open pipelined (HELLO_INFO not in yet; `credentials` then given),
        BEGIN_LEAN and a first chunk go out at once, as Feature.LEAN allows whatever the
        device's max_payload; a device without LEAN refuses them (unknown frames change
        nothing) and this returns None. COMMIT waits for HELLO_INFO and the set's check."""
        speculative = self._hello is None
        if speculative:
            lean, window = True, 1  # every device takes a window of one
        else:
            h = self.hello
            lean, window = bool(h.features & m.Feature.LEAN), h.window
        if lean:
            largest = lean_largest(self.byte_time, HOST_LEAN_CHUNK)
        else:
            largest = min(self.hello.max_payload, HOST_MAX_PAYLOAD) - m.DATA_OVERHEAD
        if self.chunk_sizer is None or self.chunk_sizer.max_size != largest:
            self.chunk_sizer = ChunkSizer(largest) if self.adaptive_chunks else None
        chunk = self.chunk_sizer.size if self.chunk_sizer is not None else largest
        chunks = -(-len(bundle) // chunk)
        if lean:  # whatever the size, a lean chunk may be any length up to it
            chunk = short_tail(len(bundle), chunk)
            chunks = -(-len(bundle) // chunk)
        frame_bytes = len(bundle) + (chunks + 2) * 32
        limits = Limits(
            retries=self.retries,
            timeout=self.timeout,
            budget=2 * (self.retries + 1) * self.timeout + 4 * frame_bytes * self.byte_time + 1.0,
        )
        transfer = HostTransfer(
            self.link,
            random.randint(1, 0xFFFF),
            bundle,
            chunk_size=chunk,
            window=window,
            rto=min(self.timeout, 0.25 + 4 * (chunk + 20) * self.byte_time),
            limits=limits,
            now=self.clock(),
            sizer=self.chunk_sizer,
            lean=lean,
            hold_commit=speculative,
        )
        # The bar moves with every DATA byte sent or acknowledged, whichever is further.
        bar = SentBytes(progress, transfer.total) if progress else None
        held: list[m.Frame] = []  # answers that came before HELLO_INFO
        polled = False
        try:
            while transfer.committed is None:
                if not (speculative and polled):  # before HELLO_INFO: BEGIN and one chunk
                    polled = True
                    for msg, seq in transfer.poll(self.clock()):
                        transfer.sent(
                            msg, seq, self._send(msg, seq, bar, transfer.sender.chunk_size)
                        )
                if speculative:
                    frames, resend = self._take_hello(
                        self._receive(self._hello_deadline - self.clock())
                    )
                    held += frames
                    if self._hello is None and (resend or self.clock() >= self._hello_deadline):
                        self._await_hello()  # HELLO again, as a request
                    if self._hello is None:
                        continue
                    if not self._hello.features & m.Feature.LEAN:
                        self._take_back_output()
                        return None  # what it answered to the lean frames changed nothing
                    assert credentials is not None
                    self._check_fits(credentials, bundle)  # before COMMIT can go out
                    transfer.sender.set_window(self._hello.window)
                    transfer.hold_commit = speculative = False
                    frames, held = held, []
                else:
                    frames = self._receive(transfer.wakeup() - self.clock())
                for frame in frames:
                    transfer.receive(frame, self.clock())
                    if transfer.committed is not None:
                        break
                if bar is not None:
                    bar.show(transfer.acked_bytes)
        except LinkError as err:
            if transfer.state is not State.COMMITTING:
                raise  # COMMIT never went out: the device still holds its old set
            raise LinkError(
                f"{err.message}; COMMIT was sent but not answered, so the device holds either "
                "its old set or the new one, whole: `provision device verify` tells which",
                code="link.commit_unknown",
            ) from None
        return transfer.committed


SESSION = NativeSession
