"""Run any simulated device over an in-process pair (`sim://`), a pseudo-terminal or TCP.

A simulated device is a sans-IO object (no clock, no IO) with this interface:

    class MyDevice:
        def boot(self) -> bytes                     # called once at power-on; bytes it prints
        def receive_data(self, data: bytes) -> bytes  # bytes in from the host → bytes out
        # optional:
        def take_work_time(self) -> float           # seconds of processing since last call
        def idle(self) -> None                      # called when nothing is waiting (background
                                                    # work such as pre-erasing flash)

It may raise provision.sim.store.PowerCut from receive_data/idle (a flash-level power cut).
A factory `create(ctx: SimContext) -> device` makes one; after a power cut the runner drops
the object (RAM lost) and calls the factory again with the same SimContext, whose `store`
(a SlotStore over the same Flash) has been re-mounted. Register a kind with
`register_kind("my-kind", "package.module:create")`; built in: native, at-cmng, zephyr-shell.

URLs (every option optional):

    sim://native?flash=/tmp/dev.flash&baud=115200&profile=default&seed=7
                &flip=0.001&drop=0.0005&dup=0.0005&stall=0.0001&stall_s=0.5
                &cut_at=1234&flash_cut=300&silent_after=5000&<kind-specific options>

The in-process pair runs on a *virtual clock*: reading with a timeout advances simulated time
instead of sleeping, so tests check time bounds without wall time. The line model is honest:
each byte takes 10 bit times (8N1) at the emulated baud, the device is busy for its reported
work time (flash latency from the profile), and bytes arriving while it is busy wait in a
receive buffer of `profile.rx_buffer` bytes; what overflows is lost.
Without a baud (`baud=0`) bytes take no time. `provision sim --pty/--tcp` uses the same runner
on the wall clock.
"""

from __future__ import annotations

import importlib
import os
import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from provision.dialects import DIALECTS
from provision.errors import InputError
from provision.sim.faults import FAULT_KEYS, FaultPlan, LineFaults
from provision.sim.profile import DeviceProfile, profile
from provision.sim.store import PowerCut, SlotStore, open_store

DEFAULT_BAUD = 115200


class SimulatedDevice(Protocol):
    def boot(self) -> bytes: ...

    def receive_data(self, data: bytes) -> bytes: ...


@dataclass
class SimContext:
    """What a device factory gets; survives power cuts (the flash does, RAM does not)."""

    kind: str
    store: SlotStore
    profile: DeviceProfile
    options: dict[str, str] = field(default_factory=dict)  # kind-specific options
    seed: int = 0
    boots: int = 0  # how many times the device has been powered on (1 at first boot)


# Every registered dialect's simulator: provision.sim.<its module>:create (the dialect's one
# registration line in provision.dialects names both); register_kind adds others.
SIM_KINDS: dict[str, str] = {
    name: f"provision.sim.{module}:create" for name, module in DIALECTS.items()
}
# Kinds whose flash is not the default profile's (the esp32 needs 4 MB of flat flash).
DEFAULT_PROFILES: dict[str, str] = {"esp32": "esp32"}


def register_kind(name: str, target: str) -> None:
    SIM_KINDS[name] = target


def device_factory(kind: str) -> Callable[[SimContext], Any]:
    try:
        target = SIM_KINDS[kind]
    except KeyError:
        valid = ", ".join(SIM_KINDS)
        raise InputError(f"unknown simulated device {kind!r} (valid: {valid})") from None
    module_name, func = target.split(":")
    try:
        return getattr(importlib.import_module(module_name), func)
    except (ImportError, AttributeError):
        raise InputError(f"simulated device {kind!r} is not available in this build") from None


# --- the line -----------------------------------------------------------------------------


class Line:
    """One direction of a serial line with byte timing and faults. Sans-IO: times are given.

    Segments are (time the first byte starts, bytes, byte time); byte i of a segment has
    arrived at start + (i + 1) * byte time. `byte_time` applies to bytes sent from then on
    (a UART that switches rate does not retime what it has sent)."""

    def __init__(self, byte_time: float, faults: LineFaults | None) -> None:
        self.byte_time = byte_time
        self.faults = faults
        self.free_at = 0.0
        self._segments: deque[tuple[float, bytes, float]] = deque()

    def send(self, data: bytes, now: float) -> None:
        pieces = self.faults.apply(data) if self.faults else [(0.0, data)]
        t = max(now, self.free_at)
        bt = self.byte_time
        for delay, piece in pieces:
            t += delay
            if piece:
                self._segments.append((t, piece, bt))
                t += len(piece) * bt
        self.free_at = t

    def next_time(self) -> float | None:
        """When the next byte has arrived, or None if the line is empty."""
        if not self._segments:
            return None
        t0, _, bt = self._segments[0]
        return t0 + bt

    def unit_time(self, delimiters: bytes, skip: int = 0) -> float | None:
        """When the next unit (up to a delimiter byte or the end of a segment) has arrived;
        `skip`: leading bytes that cannot end it (an opening SLIP 0xC0)."""
        if not self._segments:
            return None
        t0, data, bt = self._segments[0]
        return t0 + (_unit_len(data, delimiters, skip)) * bt

    def pop_unit(self, now: float, delimiters: bytes, skip: int = 0) -> tuple[float, bytes] | None:
        if not self._segments:
            return None
        t0, data, bt = self._segments[0]
        n = _unit_len(data, delimiters, skip)
        t_end = t0 + n * bt
        if t_end > now:
            return None
        self._segments.popleft()
        if n < len(data):
            self._segments.appendleft((t_end, data[n:], bt))
        return t_end, data[:n]

    def deliver(self, now: float) -> bytes:
        """Every byte that has arrived by `now`."""
        out = bytearray()
        while self._segments:
            t0, data, bt = self._segments[0]
            if bt <= 0:
                n = len(data) if t0 <= now else 0
            else:
                n = min(len(data), int((now - t0) / bt + 1e-9))
            if n <= 0:
                break
            out += data[:n]
            self._segments.popleft()
            if n < len(data):
                self._segments.appendleft((t0 + n * bt, data[n:], bt))
                break
        return bytes(out)

    def cut(self, t: float) -> None:
        """Power cut at `t`: bytes not yet on the wire by then are never sent."""
        kept: deque[tuple[float, bytes, float]] = deque()
        for t0, data, bt in self._segments:
            if t0 >= t:
                continue
            n = len(data) if bt <= 0 else int((t - t0) / bt)
            if n > 0:
                kept.append((t0, data[:n], bt))
        self._segments = kept
        self.free_at = min(self.free_at, t)


def garble(data: bytes) -> bytes:
    """What a UART reads when the sender runs at another rate: framing errors and wrong
    bytes. A long low line (0x00) still reads as zeros, so frames still end and fail their
    CRC, as on a real line."""
    return bytes(0 if b == 0 else (b ^ 0xA5) or 0x5A for b in data)


def _unit_len(data: bytes, delimiters: bytes, skip: int = 0) -> int:
    best = len(data)
    for d in delimiters:
        i = data.find(d, skip)
        if 0 <= i < best:
            best = i
    return min(best + 1, len(data))


# --- the runner ---------------------------------------------------------------------------

# A frame ends at 0x00 (native) and a line at CR/LF (shells): the device handles each unit
# when its last byte has arrived, so its answer starts at the right time. A device whose
# frames hold those bytes names its own: FRAME_END, a byte that opens and closes every frame
# (SLIP's 0xC0; esp32 headers are full of zeros), so a unit is a whole frame, its opening
# byte included (a lone opening byte would cost the pty jig and the host a wake-up each).
_DELIMITERS = b"\x00\n\r"


class SimRunner:
    """A simulated device behind a timed, faulty line. Sans-IO: every call is given `now`.

    host_write(data, now) queues host bytes; advance(now) runs the device up to `now` and
    returns what reached the host; next_event_time() says when something will happen next.
    """

    def __init__(
        self,
        kind: str,
        ctx: SimContext,
        *,
        baud: int | None = DEFAULT_BAUD,
        faults: FaultPlan | None = None,
        line_max: float = float("inf"),
    ) -> None:
        self.kind = kind
        self.baud = baud
        self.ctx = ctx
        self.factory = device_factory(kind)
        self.faults = faults or FaultPlan()
        rng = random.Random(self.faults.seed)
        line_faults = self.faults.line_rate > 0
        self.byte_time = 10.0 / baud if baud else 0.0
        self.boot_baud = baud
        self.host_baud = baud  # the host's port; bytes between unequal rates are garbled
        # Fastest rate the cable/bridge carries intact: known before the boot banner is sent,
        # which crosses the same cable.
        self.line_max = line_max
        # Served over TCP, nothing tells the runner the host's rate: it follows the device's.
        # The in-process transport (and a pty whose termios the pump reads) sets it instead.
        self.host_follows = True
        self.h2d = Line(self.byte_time, LineFaults(self.faults, rng) if line_faults else None)
        self.d2h = Line(self.byte_time, LineFaults(self.faults, rng) if line_faults else None)
        self.rx_count = 0
        self.overrun_bytes = 0  # lost because the receive buffer was full
        self.power_cuts = 0
        self.silent = False
        self._waiting: deque[tuple[float, int]] = deque()  # (start of handling, bytes)
        self.busy_until = 0.0
        self.boot_until = 0.0
        # A bank erase started while idle runs in the flash (a NOR chip's own erase, or the
        # flash controller's): the CPU keeps handling frames and only the next flash
        # operation waits for it.
        self.flash_free_at = 0.0
        if self.faults.flash_cut is not None:
            ctx.store.flash.cut_power_after(self.faults.flash_cut)
        self._cut_at = self.faults.cut_at
        self._power_on(0.0)

    # -- device lifecycle
    def _power_on(self, t: float) -> None:
        self.ctx.boots += 1
        self.device = self.factory(self.ctx)
        frame_end: bytes | None = getattr(self.device, "FRAME_END", None)
        self.delimiters = frame_end or _DELIMITERS
        self._skip = 1 if frame_end else 0
        self._set_device_baud(self.boot_baud)  # a UART starts at its boot rate
        out = self._guarded(self.device.boot, t)
        if out is not None:
            self._emit(out, t)

    def _power_cut(self, t: float) -> None:
        self.power_cuts += 1
        self.d2h.cut(t)
        self._waiting.clear()
        self.ctx.store.mount()
        boot_at = t + self.ctx.profile.boot_ms / 1e3
        self.busy_until = self.boot_until = boot_at
        self.flash_free_at = min(self.flash_free_at, t)  # a cut stops an erase
        self._power_on(boot_at)

    def _guarded(
        self, call: Callable[[], bytes | None], t: float, *, background: bool = False
    ) -> bytes | None:
        flash = self.ctx.store.flash
        ops = flash.operations
        try:
            out = call()
        except PowerCut:
            self._power_cut(max(t, self.busy_until))
            return None
        work = self._work()
        if background:
            self.flash_free_at = max(self.flash_free_at, t) + work
        elif flash.operations > ops:
            # This call used the flash: it starts once a background erase is over.
            self.busy_until = max(self.busy_until, t, self.flash_free_at) + work
        else:
            self.busy_until = max(self.busy_until, t) + work
        return out

    def _work(self) -> float:
        take = getattr(self.device, "take_work_time", None)
        return take() if take else 0.0

    def _emit(self, out: bytes, t: float) -> None:
        if out:
            self.d2h.send(self._across(out), max(t, self.busy_until))

    def _across(self, data: bytes) -> bytes:
        if self.baud and (self.host_baud != self.baud or self.baud > self.line_max):
            return garble(data)
        return data

    # -- host side
    def host_write(self, data: bytes, now: float) -> None:
        self.h2d.send(self._across(data), now)

    def set_host_baud(self, baud: int) -> None:
        """The host switched its port (an unpaced line has no rate to switch)."""
        if self.baud:
            self.host_baud = baud
            self.h2d.byte_time = 10.0 / baud

    def advance(self, now: float) -> bytes:
        while True:
            unit = self.h2d.pop_unit(now, self.delimiters, self._skip)
            if unit is None:
                break
            self._handle(*unit)
        idle = getattr(self.device, "idle", None)
        if idle is not None and self.busy_until <= now and not self._waiting:
            self._guarded(idle, now, background=True)
        return self.d2h.deliver(now)

    def _handle(self, t_arrived: float, data: bytes) -> None:
        if self.silent:
            return
        if t_arrived < self.boot_until:
            return  # bytes sent while the device boots are lost
        # Bytes that wait while the device is busy occupy its receive buffer.
        while self._waiting and self._waiting[0][0] <= t_arrived:
            self._waiting.popleft()
        queued = sum(n for _, n in self._waiting)
        room = self.ctx.profile.rx_buffer - queued
        if t_arrived < self.busy_until and len(data) > room:
            self.overrun_bytes += len(data) - max(0, room)
            data = data[: max(0, room)]
        if not data:
            return
        cut = False
        if self._cut_at is not None and self.rx_count + len(data) >= self._cut_at:
            data = data[: self._cut_at - self.rx_count]
            self._cut_at = None
            cut = True
        if self.faults.silent_after is not None and self.rx_count + len(data) >= (
            self.faults.silent_after
        ):
            data = data[: self.faults.silent_after - self.rx_count]
            self.silent = True
        self.rx_count += len(data)
        start = max(t_arrived, self.busy_until)
        if start > t_arrived:
            self._waiting.append((start, len(data)))
        cuts_before = self.power_cuts
        out = self._guarded(lambda: self.device.receive_data(data), start)
        if self.power_cuts == cuts_before and out is not None:
            self._emit(out, start)
            self._follow_baud_change()
        if cut:
            self._power_cut(t_arrived)

    def _follow_baud_change(self) -> None:
        """A device that switched its UART (esp32 CHANGE_BAUDRATE, native CHANGE_BAUD) asks
        for a new rate once its answer is queued: the answer keeps the old rate."""
        baud = getattr(self.device, "baud_request", None)
        if not baud or not self.baud:
            return
        self.device.baud_request = None
        self._set_device_baud(baud)

    def _set_device_baud(self, baud: int | None) -> None:
        if not baud or not self.baud:
            return
        self.baud = baud
        self.byte_time = 10.0 / baud
        self.d2h.byte_time = self.byte_time
        if self.host_follows:
            self.host_baud = baud
            self.h2d.byte_time = self.byte_time
        if getattr(self.device, "line_baud", None) is not None:
            self.device.line_baud = baud

    def next_event_time(self, *, whole_units: bool = False) -> float | None:
        """When the device next handles input or a byte reaches the host; with whole_units,
        when the next complete frame or line has reached the host."""
        d2h = self.d2h
        out = d2h.unit_time(self.delimiters, self._skip) if whole_units else d2h.next_time()
        into = self.h2d.unit_time(self.delimiters, self._skip)
        times = [t for t in (into, out) if t is not None]
        return min(times) if times else None


# --- in-process transport on a virtual clock ----------------------------------------------


class SimTransport:
    """Transport over a SimRunner. read() advances virtual time instead of sleeping."""

    def __init__(self, runner: SimRunner) -> None:
        self.runner = runner
        runner.host_follows = False  # the host's side switches when the host says so
        self.now = 0.0
        self._pending = b""
        self.closed = False
        self.bytes_written = 0

    @property
    def baudrate(self) -> int | None:
        """The host port's rate (the drive loop estimates line time from it); setting it
        switches the host's side of the line, as termios does on a real port."""
        return self.runner.host_baud

    @baudrate.setter
    def baudrate(self, baud: int) -> None:
        self.runner.set_host_baud(baud)

    def clock(self) -> float:
        return self.now

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        self.runner.host_write(bytes(data), self.now)

    def discard_output(self) -> None:
        """Drop what was written but has not left yet, as tcflush(TCOFLUSH) does."""
        self.runner.h2d.cut(self.now)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        deadline = self.now + max(0.0, timeout)
        while not self._pending:
            self._pending = self.runner.advance(self.now)
            if self._pending:
                break
            t = self.runner.next_event_time(whole_units=True)
            if t is None or t > deadline:
                self.now = deadline
                self._pending = self.runner.advance(self.now)
                if not self._pending:
                    return b""
                break
            self.now = max(self.now, t)
        out, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
        return out

    def close(self) -> None:
        self.closed = True


def parse_sim_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    if parts.scheme != "sim":
        raise InputError(f"{url}: not a sim:// URL")
    kind = (parts.netloc + parts.path).strip("/") or "native"
    return kind, dict(parse_qsl(parts.query, keep_blank_values=True))


# The options every simulated device takes (the runner's); each kind adds its own (OPTIONS in
# its module). `sim://kind?name=value` and `provision sim --dialect kind -o name=value` read
# this one table, so a typo is refused the same way in both.
RUNNER_OPTIONS: dict[str, str] = {
    "profile": "device limits: default, small",
    "flash": "flash file: state survives restarts (default: in memory)",
    "baud": "emulated line rate, 0: no pacing",
    "seed": "seed for faults and the derived device identity",
    "flip": "bit-flip probability per byte",
    "drop": "drop probability per byte",
    "dup": "duplicate probability per byte",
    "stall": "stall probability per byte",
    "stall_s": "seconds a stall lasts",
    "cut_at": "power cut after this many received bytes",
    "flash_cut": "power cut after this many flash bytes programmed",
    "silent_after": "stop answering after this many received bytes",
    "line_max": "fastest baud the line carries intact (faster bytes are garbled)",
}


def kind_options(kind: str) -> dict[str, str] | None:
    """name → description of `kind`'s own options; None if the kind does not declare them."""
    device_factory(kind)  # InputError for an unknown kind
    module = importlib.import_module(SIM_KINDS[kind].split(":")[0])
    declared = getattr(module, "OPTIONS", None)
    return dict(declared) if declared is not None else None


def check_options(kind: str, options: Mapping[str, str]) -> None:
    """Refuse an option neither the runner nor `kind` knows, naming the valid ones."""
    own = kind_options(kind)
    if own is None:
        return
    valid = {**RUNNER_OPTIONS, **own}
    for name in options:
        if name not in valid:
            names = ", ".join(sorted(valid))
            raise InputError(f"unknown {kind} sim option {name!r} (valid: {names})")


def build_runner(
    kind: str,
    options: Mapping[str, str],
    baud: int | None = None,
    *,
    clock_baud_default: int | None = DEFAULT_BAUD,
) -> SimRunner:
    """A SimRunner for `kind` from string options (URL query or CLI)."""
    check_options(kind, options)
    opts = dict(options)
    prof = profile(opts.pop("profile", DEFAULT_PROFILES.get(kind, "default")))
    flash = opts.pop("flash", None) or None
    if "baud" in opts:
        raw = opts.pop("baud")
        try:
            baud = int(raw)
        except ValueError:
            raise InputError(f"sim option baud={raw!r} is not a number") from None
        if baud < 0:
            raise InputError(f"sim option baud={raw!r} must be 0 (no pacing) or more")
    elif baud is None:
        baud = clock_baud_default
    raw_line_max = opts.pop("line_max", None)
    try:
        line_max = float(int(raw_line_max)) if raw_line_max else float("inf")
    except ValueError:
        raise InputError(f"sim option line_max={raw_line_max!r} is not a number") from None
    faults = FaultPlan.from_options(opts)
    for key in FAULT_KEYS:
        opts.pop(key, None)
    store = open_store(prof, flash)
    ctx = SimContext(kind, store, prof, opts, faults.seed)
    return SimRunner(kind, ctx, baud=baud, faults=faults, line_max=line_max)


def open_sim_transport(url: str, baud: int | None = None) -> SimTransport:
    """Resolve `sim://kind?options` in-process (the transport registry calls this)."""
    kind, options = parse_sim_url(url)
    return SimTransport(build_runner(kind, options, baud))


# --- serving on the wall clock: pty and TCP -----------------------------------------------


class _WallClockPump:
    """Drives a SimRunner from a file descriptor in real time (baud pacing included)."""

    def __init__(self, runner: SimRunner) -> None:
        self.runner = runner
        self.t0 = time.monotonic()
        self.stop = threading.Event()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def pump(self, read_fd: int, write: Callable[[bytes], None]) -> None:
        while not self.stop.is_set():
            out = self.runner.advance(self.now())
            if out:
                write(out)
            t_next = self.runner.next_event_time()
            wait = 0.05 if t_next is None else min(0.05, max(0.0, t_next - self.now()))
            ready, _, _ = select.select([read_fd], [], [], wait)
            if ready:
                try:
                    data = os.read(read_fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    if isinstance(read_fd, int) and not _is_pty(read_fd):
                        return
                    time.sleep(0.05)  # pty with no client: wait for one
                    continue
                self.runner.host_write(data, self.now())


def _is_pty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def serve_pty(runner: SimRunner, on_ready: Callable[[str], None]) -> None:
    """Expose the device on a new pseudo-terminal; call on_ready(path) then serve forever."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    on_ready(path)
    pump = _WallClockPump(runner)

    def write(data: bytes) -> None:
        os.write(master, data)

    try:
        pump.pump(master, write)
    finally:
        os.close(master)
        os.close(slave)


def serve_tcp(
    runner_factory: Callable[[], SimRunner],
    port: int,
    on_ready: Callable[[str], None],
    *,
    once: bool = False,
) -> None:
    """Serve on 127.0.0.1:port (socket://127.0.0.1:port); one client at a time.

    Each connection gets the runner from `runner_factory` (the flash file carries state)."""
    try:
        server = socket.create_server(("127.0.0.1", port))
    except OSError as err:
        why = os.strerror(err.errno) if err.errno else str(err)
        raise InputError(
            f"127.0.0.1:{port}: cannot listen: {why} (choose another port, 0 for any)"
        ) from None
    with server:
        on_ready(f"socket://127.0.0.1:{server.getsockname()[1]}")
        while True:
            conn, _ = server.accept()
            with conn:
                pump = _WallClockPump(runner_factory())
                pump.pump(conn.fileno(), conn.sendall)
            if once:
                return
