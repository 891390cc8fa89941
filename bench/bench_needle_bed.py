"""Time on the needle bed: `line run`'s wall time per device against the device's own time.

    .venv/bin/python bench/bench_needle_bed.py [--devices 8]

The device's own time is every session the line opens to it (probe/HELLO, identity, the
registry check's LIST, write, verify, close) on the simulator's virtual clock: wire bytes at
the emulated rate, the device's processing and flash time, the protocol's turnarounds, and
nothing else. The wall time is the same session's on one port of `line run` against a pty
jig served on the wall clock at the same rate (provision.line.simulate): from opening the
port to closing it, so the host's work inside (key, certificate, registry claim and row
with their fsync) counts; the wait for the next board (the jig swaps boards when the port
closes, the line looks again every poll_interval) does not. Both at --baud 115200, then
with --fast-baud auto. Goal: wall / device <= 1.2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import provision.device
from provision.line import Line
from provision.line.config import config_from_dict
from provision.line.simulate import start_jigs
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key


def _config(where: Path, port: str, fast_baud: str | None):  # type: ignore[no-untyped-def]
    settings = {
        "station": "bench",
        "registry": str(where / f"reg-{abs(hash((port, fast_baud)))}.sqlite"),
        "dialect": "native",
        "ports": [port],
        "baud": 115200,
        "poll_interval": 0.02,
        "ca": {"cert": "ca.crt", "key": "ca.key"},
    }
    if fast_baud:
        settings["fast_baud"] = fast_baud
    return config_from_dict(settings, where)


def _sessions(clock_of):  # type: ignore[no-untyped-def]
    """Patch provision.device.open so each device's first session (the one that provisions
    it) is timed from the port's opening to its close with `clock_of(dev)`; later sessions
    to the same device (the line looking again before the board is swapped) are not its
    time. Returns (per-device seconds, undo)."""
    per_device: dict[str, float] = {}
    real_open = provision.device.open

    def timed_open(*args, **kw):  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        dev = real_open(*args, **kw)
        real_close = dev.close

        def close() -> None:
            real_close()  # the switch back to the opening rate counts too
            per_device.setdefault(dev.info().device_id, clock_of(dev, t0))

        dev.close = close  # type: ignore[method-assign]
        return dev

    provision.device.open = timed_open  # type: ignore[assignment]

    def undo() -> None:
        provision.device.open = real_open  # type: ignore[assignment]

    return per_device, undo


def _run(where: Path, port: str, devices: int, fast_baud: str | None, clock_of) -> float:  # type: ignore[no-untyped-def]
    per_device, undo = _sessions(clock_of)
    try:
        summary = Line(_config(where, port, fast_baud), operator="bench", limit=devices).run()
        assert summary.counts == {"ok": devices}, summary.counts
    finally:
        undo()
    return sum(per_device.values()) / len(per_device)


def device_time(where: Path, devices: int, fast_baud: str | None) -> float:
    """Seconds per device on the virtual clock (jig:// runs the same device in-process, and
    each session's transport starts at 0)."""
    port = f"jig://nb{os.getpid()}{fast_baud}?kind=native"
    return _run(where, port, devices, fast_baud, lambda dev, t0: dev.session.transport.now)


def wall_time(where: Path, devices: int, fast_baud: str | None) -> float:
    jigs = start_jigs(1, kind="native", baud=115200)
    try:
        return _run(where, jigs[0].path, devices, fast_baud, lambda dev, t0: time.monotonic() - t0)
    finally:
        for jig in jigs:
            jig.stop.set()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=8)
    args = ap.parse_args()
    print(f"line run, one port, {args.devices} devices, native, P-256 host-key flow")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        ca = create_root_ca("Bench CA")
        (where / "ca.crt").write_bytes(cert_pem(ca.cert))
        (where / "ca.key").write_bytes(serialize_private_key(ca.key))
        os.chmod(where / "ca.key", 0o600)
        for fast in (None, "auto"):
            dev = device_time(where, args.devices, fast)
            wall = wall_time(where, args.devices, fast)
            label = "115200" if fast is None else "--fast-baud auto"
            ratio = wall / dev
            print(
                f"  {label:17s} device {dev * 1000:7.1f} ms, wall {wall * 1000:7.1f} ms"
                f" -> ratio {ratio:.2f} (goal <= 1.2) {'OK' if ratio <= 1.2 else 'MISSED'}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
