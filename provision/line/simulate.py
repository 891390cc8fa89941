"""Simulated test jigs: a port where a new device sits each time the host lets go of it.

Two forms, one model ("the host closes the port" = "the operator swaps the board"):

- `jig://NAME?kind=native&<sim options>` — in-process, on the simulator's virtual clock.
  Each open of the same NAME gets the next device (a new UID, empty flash). Fast; for tests.
- `provision line simulate N` — N jigs on pseudo-terminals, on the wall clock with baud
  pacing, in their own process: rehearsals, CI and the line benchmark.

Device n of jig NAME has seed = hash(NAME, n), so UIDs/IMEIs are stable across runs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from provision.errors import InputError

if TYPE_CHECKING:
    # The simulator is a device, not host code: imported at run time only when a jig opens.
    from provision.sim.serve import SimRunner, SimTransport

_jig_counters: dict[str, int] = {}
_jig_lock = threading.Lock()


def device_seed(name: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{name}/{n}".encode()).digest()[:6], "big")


def _runner(kind: str, options: Mapping[str, str], seed: int, baud: int | None) -> SimRunner:
    # The simulator is a device, not host code: imported only when a jig is opened.
    from provision.sim.serve import build_runner

    return build_runner(kind, {**options, "seed": str(seed)}, baud)


def open_jig_transport(url: str, baud: int | None = None) -> SimTransport:
    """Transport factory for `jig://NAME?kind=…` (registered with provision.transport)."""
    from provision.sim.serve import SimTransport

    parts = urlsplit(url)
    name = parts.netloc + parts.path
    if not name:
        raise InputError(f"{url}: a jig URL needs a name (jig://NAME)")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    kind = options.pop("kind", "native")
    with _jig_lock:
        n = _jig_counters.get(name, 0)
        _jig_counters[name] = n + 1
    return SimTransport(_runner(kind, options, device_seed(name, n), baud))


# -- jigs on pseudo-terminals ----------------------------------------------------------


@dataclass
class PtyJig:
    """One simulated jig on a pty: serves device after device until stopped."""

    name: str
    kind: str
    options: dict[str, str]
    baud: int | None
    path: str = ""
    devices: int = 0  # devices presented so far
    received: int = 0  # bytes the current device has taken off the line
    stop: threading.Event = field(default_factory=threading.Event)

    def open(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self._master = master
        # Between boards the jig holds the slave open itself: a master with no slave open
        # reads EIO at once, so select() could not wait for the host (it was polled, 1 to
        # 8 ms late on every board, which counted as the host's time on the needle bed).
        # Held, the master is readable exactly when the host has written. Once the host has
        # talked the jig lets go of its copy, so the host closing its own reads as EIO: that
        # is the board being taken off the jig.
        self._held: int | None = slave

    def serve(self) -> None:
        master = self._master
        try:
            while not self.stop.is_set():
                seed = device_seed(self.name, self.devices)
                runner = _runner(self.kind, self.options, seed, self.baud)
                self.devices += 1
                self.received = 0
                # No flush between boards: the host may already have reopened the port and
                # sent its first bytes, which belong to the new board.
                self._serve_device(master, runner)
        finally:
            self._let_go()
            os.close(master)

    def _hold(self) -> None:
        if self._held is None:
            self._held = os.open(self.path, os.O_RDWR | os.O_NOCTTY)

    def _let_go(self) -> None:
        if self._held is not None:
            os.close(self._held)
            self._held = None

    def _serve_device(self, master: int, runner: SimRunner) -> None:
        t0 = time.monotonic()
        self._hold()
        # Like a UART, take the host's bytes only as the emulated wire carries them (what
        # 50 ms of line holds, at least a 64-byte FIFO): the rest waits in the host's tty
        # queue, where a host that gives up on a transfer can still drop it (tcflush).
        take = 4096 if not runner.byte_time else max(64, int(0.05 / runner.byte_time))
        # Native frames go out whole: the bytes of a frame still crossing the emulated wire
        # (the jig woke for the host's bytes meanwhile) wait for its closing 0x00, as the
        # host could not decode them before anyway; each piece was a wake-up of the host's
        # and of the jig's.
        framed = runner.delimiters == b"\x00"
        partial = b""
        while not self.stop.is_set():
            now = time.monotonic() - t0
            out = runner.advance(now)
            if framed and out:
                out = partial + out
                end = _frames_end(out)
                out, partial = out[:end], out[end:]
            if out:
                with contextlib.suppress(OSError):
                    os.write(master, out)
            # Wake when a whole frame or line has crossed the emulated wire, not for every
            # byte: the host reads frames anyway, and 32 jigs share one process.
            t_next = runner.next_event_time(whole_units=True)
            wait = 0.05 if t_next is None else min(0.05, max(0.0, t_next - now))
            room_at = runner.h2d.free_at - take * runner.byte_time
            if room_at > now:
                time.sleep(min(wait, room_at - now))
                continue
            ready, _, _ = select.select([master], [], [], wait)
            if not ready:
                continue
            try:
                data = os.read(master, take)
            except OSError as err:
                if err.errno != errno.EIO:
                    raise
                # No slave open: the jig let go of its copy when the host first wrote, so
                # the host has closed the port. Next board.
                return
            if data:
                self._let_go()  # the host has the port: its close ends this board
                self.received += len(data)
                runner.host_write(data, time.monotonic() - t0)


def _frames_end(data: bytes) -> int:
    """Where the last whole native frame in `data` ends: after its closing 0x00, the one
    that follows a frame's last byte (0x00 after 0x00 opens the next frame or is empty)."""
    end = data.rfind(b"\x00")
    while end > 0 and data[end - 1] == 0:
        end = data.rfind(b"\x00", 0, end)
    return end + 1 if end > 0 else 0


def start_jigs(
    count: int,
    *,
    kind: str = "native",
    baud: int | None = 115200,
    options: Mapping[str, str] | None = None,
    prefix: str = "jig",
) -> list[PtyJig]:
    """Start `count` pty jigs in background threads; their .path is the port to use."""
    if not 1 <= count <= 256:
        raise InputError("simulate: between 1 and 256 ports")
    from provision.sim.serve import device_factory

    device_factory(kind)  # an unknown kind fails here, before any pty exists
    jigs = []
    for i in range(count):
        jig = PtyJig(f"{prefix}{i}", kind, dict(options or {}), baud)
        jig.open()
        threading.Thread(target=jig.serve, name=f"jig {jig.path}", daemon=True).start()
        jigs.append(jig)
    return jigs


def serve_jigs(jigs: list[PtyJig], until: Callable[[], bool]) -> None:
    """Block until `until()` is true (or Ctrl-C), then stop every jig."""
    try:
        while not until():
            time.sleep(0.2)
    finally:
        for jig in jigs:
            jig.stop.set()
