"""The link model against the wall clock: the same transfer timed both ways.

    .venv/bin/python bench/bench_model_vs_wall.py [--baud 115200] [--runs 3]

bench_link.py times transfers on the simulator's virtual clock (bytes x 10 bit times, the
profile's device time, the protocol's turnarounds). Here the same session (HELLO, write
with COMMITTED's digest check) runs for real, through a pseudo-terminal:

1. simulator: `provision sim --pty`'s runner (provision.sim.serve.serve_pty) paces its own
   line at the emulated rate on the wall clock; model = the same device on sim:// (virtual).
2. C stub: the posix stub on its pty, behind a bridge that paces each direction at the rate
   (a byte every 10 bit times; a frame is passed on when its last byte would have arrived);
   model = a simulated device with the stub's HELLO limits and no processing or flash time.

Prints model, wall (median of --runs) and wall / model - 1 (goal: within 10 %).
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import threading
import time
import tty
from collections import deque
from pathlib import Path

from bench_link import p256_set  # the same set bench_link times (this folder is on sys.path)

from provision.bundle.model import CredentialSet
from provision.dialects.native import NativeSession
from provision.sim import profile as sim_profile
from provision.sim.serve import SimContext, SimRunner, SimTransport, build_runner, serve_pty
from provision.sim.store import open_store
from provision.transport.serial import open_serial

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "firmware_stub" / "build" / "posix" / "provision-stub"


def _session_time(transport, clock, creds: CredentialSet) -> float:  # type: ignore[no-untyped-def]
    """Open a session and write `creds`: seconds on `clock`."""
    t0 = clock()
    s = NativeSession(transport, timeout=2.0, retries=3)
    s.write(creds)
    elapsed = clock() - t0
    s.close()
    return elapsed


# -- 1. the simulator on a pty --------------------------------------------------------------


def sim_model(baud: int, creds: CredentialSet) -> float:
    transport = SimTransport(build_runner("native", {}, baud))
    return _session_time(transport, transport.clock, creds)


def sim_wall(baud: int, creds: CredentialSet) -> float:
    ready: list[str] = []
    runner = build_runner("native", {}, baud)
    thread = threading.Thread(target=serve_pty, args=(runner, ready.append), daemon=True)
    thread.start()
    while not ready:
        time.sleep(0.001)
    return _session_time(open_serial(ready[0], baud), time.monotonic, creds)


# -- 2. the C stub behind a paced bridge ----------------------------------------------------


class PacedBridge:
    """Two file descriptors joined at `baud` (8N1): each direction passes a frame (up to a
    0x00) when its last byte would have crossed the line."""

    def __init__(self, a: int, b: int, baud: int) -> None:
        self.fds = (a, b)
        self.byte_time = 10.0 / baud
        self.free = [0.0, 0.0]  # when each direction's line is next idle
        self.queues: tuple[deque, deque] = (deque(), deque())  # (due, bytes)
        self.stop = threading.Event()

    def _schedule(self, direction: int, data: bytes, now: float) -> None:
        start = max(now, self.free[direction])
        pos = 0
        while pos < len(data):
            end = data.find(0, pos)
            end = len(data) if end < 0 else end + 1
            start += (end - pos) * self.byte_time
            self.queues[direction].append((start, data[pos:end]))
            pos = end
        self.free[direction] = start

    def run(self) -> None:
        a, b = self.fds
        while not self.stop.is_set():
            now = time.monotonic()
            for direction, dst in ((0, b), (1, a)):
                q = self.queues[direction]
                while q and q[0][0] <= now:
                    os.write(dst, q.popleft()[1])
            due = [q[0][0] for q in self.queues if q]
            wait = min([0.05, *[max(0.0, d - now) for d in due]])
            ready, _, _ = select.select([a, b], [], [], wait)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if data:
                    self._schedule(0 if fd == a else 1, data, time.monotonic())


def stub_profile(hello) -> sim_profile.DeviceProfile:  # type: ignore[no-untyped-def]
    return sim_profile.DeviceProfile(
        "stub",
        max_payload=hello.max_payload,
        window=hello.window,
        max_bundle=hello.max_bundle,
        frame_us=0.0,
        program_us_per_byte=0.0,
        erase_ms=0.0,
        commit_ms=0.0,
        rx_buffer=1 << 20,
    )


def stub_model(baud: int, hello, creds: CredentialSet) -> float:  # type: ignore[no-untyped-def]
    prof = stub_profile(hello)
    store = open_store(prof)
    runner = SimRunner(
        "native", SimContext("native", store, prof, {"tls": "0", "keygen": "0"}), baud=baud
    )
    transport = SimTransport(runner)
    return _session_time(transport, transport.clock, creds)


def stub_wall(baud: int, flash: Path, creds: CredentialSet) -> tuple[float, object]:
    proc = subprocess.Popen(
        [str(STUB), "--pty", "--flash", str(flash)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout
        stub_pty = proc.stdout.readline().strip()
        to_stub = os.open(stub_pty, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(to_stub)
        master, slave = os.openpty()
        tty.setraw(slave)
        host_path = os.ttyname(slave)
        bridge = PacedBridge(to_stub, master, baud)
        threading.Thread(target=bridge.run, daemon=True).start()
        transport = open_serial(host_path, baud)
        s = NativeSession(transport, timeout=2.0, retries=3)
        hello = s.hello
        s.close()
        wall = _session_time(open_serial(host_path, baud), time.monotonic, creds)
        bridge.stop.set()
        return wall, hello
    finally:
        proc.terminate()
        proc.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    creds = p256_set()
    print(f"model (virtual clock) vs wall clock over a pty, {args.baud} baud, P-256 set write")

    def show(name: str, model: float, walls: list[float]) -> None:
        wall = statistics.median(walls)
        off = wall / model - 1
        print(
            f"  {name:34s} model {model * 1000:7.1f} ms, wall {wall * 1000:7.1f} ms "
            f"(runs {', '.join(f'{w * 1000:.1f}' for w in walls)}) -> {off:+.1%} "
            f"(goal within 10 %) {'OK' if abs(off) <= 0.10 else 'MISSED'}"
        )

    show(
        "simulator on a pty (serve_pty)",
        sim_model(args.baud, creds),
        [sim_wall(args.baud, creds) for _ in range(args.runs)],
    )
    if not STUB.exists():
        print(f"  C stub: skipped (build it: make -C firmware_stub posix; {STUB} missing)")
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        walls, hello = [], None
        for i in range(args.runs):
            wall, hello = stub_wall(args.baud, Path(tmp) / f"dev{i}.flash", creds)
            walls.append(wall)
        show("posix stub behind a paced bridge", stub_model(args.baud, hello, creds), walls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
