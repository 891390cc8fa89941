"""The P-256 set as an esp_secure_cert image onto a simulated ESP32: ours vs esptool itself.

Issue 13 goal: our write + verify not slower than `esptool write-flash` + `verify-flash` of
the same image. Both run against the same simulator (`provision sim --dialect esp32 --tcp`,
the ROM loader then esptool's flasher stub) on the wall clock with the line paced at the
given baud, one after the other, on a fresh simulator each:

- ours: `provision.device.open(socket://…, dialect="esp32")` (connect, stub upload, baud
  change, partition table), `write` (the whole 8 KB partition, compressed, then the device's
  MD5 of it) and `verify` (the partition read back, entries' digests compared);
- esptool: `esptool --port socket://… --baud B write-flash 0xD000 image` (its own MD5 check
  included) then `esptool … verify-flash 0xD000 image`, both in this process through
  a subprocess each (the CLI as users run it), each connecting and uploading its stub; the
  interpreter start-up (python -c "import esptool.__main__") is printed and taken off in
  the last column.

The image is what `bundle pack --format esp-secure-cert` makes from tests/vectors/fixtures
(root CA, device cert, P-256 key, PEM): Espressif's configure_esp_secure_cert.py makes the
same bytes. Figures are wall seconds on this machine (shared cores: run it twice).

Then the factory line (issue 13 goal: scaling efficiency >= 0.9): `provision line simulate
N --dialect esp32` (N ESP32 jigs on pseudo-terminals, in their own process, wall clock, the
line paced at 115200 baud) and provision.line's Line with an esp32 station (host-generated
keys, the MAC as device id, a registry row per board) on 1 port, then on all N. Efficiency =
devices/s on N ports / (N x devices/s on 1 port). Printed for two setups, each with the CPU
per board of the line (this process) and of the jig process:

- jigs and line share every core: the goal's figure, as before. The simulated jigs' CPU
  competes with the line's, which a real jig's (its own chip) does not;
- the jig process on the last core only and the line on the others: the jigs' CPU
  accounted for apart from the line's (on a 2-core machine the line then has one core).

What bounds it (profiled for issue 13): a board is ~0.9 s of wire time at 115200 (the stub
upload, 6.7 KB, is 0.6 s of it; a new board's partition table and esp_secure_cert are
confirmed by the device's MD5, not read). What grows with N is CPU and the waits for it:
~7-11 ms a board in the line (esptool's hex dump of what it reads and of its small
commands, built even with tracing off, is ~3 ms of that; the stub and flash blocks are
framed by provision.transport.esptool_link and escape it), ~4 ms in the jig process; a
shared machine's load moves the figure more than either (the load average is printed).
`--shared-only` runs the goal's setup alone (for profiling).

    .venv/bin/python bench/bench_esp32.py [--bauds 115200,460800] [--ports 32 --per-port 3]
    .venv/bin/python bench/bench_esp32.py --skip-write   # the line only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import provision.device
from provision.bundle import esp_secure_cert as esc
from provision.bundle.spec import PackSources, TagSources
from provision.dialects import esp32_image as esp_pack
from provision.dialects.esp32 import SEC_TAG_ENV, Esp32Session
from provision.line import Line
from provision.line.config import config_from_dict
from provision.packing import read_credentials
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key
from provision.urls import open_url

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "fixtures"


def _credentials():
    tag = TagSources(
        sec_tag=1,
        root_ca=(FIXTURES / "root-ca.pem",),
        client_cert=FIXTURES / "device.pem",
        client_key=FIXTURES / "device.key",
    )
    return read_credentials(PackSources(tags=(tag,), encoding="pem"))


class Sim:
    def __init__(self, baud: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "provision", "sim", "--dialect", "esp32", "--tcp", "0",
             "--json", "--baud", str(baud)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.port = json.loads(self.proc.stdout.readline())["port"]

    def __enter__(self) -> Sim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def ours(baud: int) -> float:
    creds = _credentials()
    with Sim(baud) as sim:
        t0 = time.perf_counter()
        transport = open_url(sim.port)
        session = Esp32Session(transport, timeout=2.0, retries=3, baud=baud)
        dev = provision.device.Device(session, sim.port)
        with dev:
            dev.write(creds)
            if not dev.verify(creds).ok:
                raise SystemExit("ours: verify failed")
        return time.perf_counter() - t0


def theirs(baud: int, image: Path) -> float:
    with Sim(baud) as sim:
        t0 = time.perf_counter()
        out = ""
        for command in ("write-flash", "verify-flash"):
            argv = ["--port", sim.port, "--baud", str(baud), command, "0xD000", str(image)]
            r = subprocess.run(
                [sys.executable, "-m", "esptool", *argv], capture_output=True, text=True
            )
            out += r.stdout + r.stderr
        seconds = time.perf_counter() - t0
        if "Hash of data verified" not in out or "digest matched" not in out:
            raise SystemExit(f"esptool did not write and verify:\n{out[-2000:]}")
        return seconds


def startup() -> float:
    """Seconds to start Python and import esptool: counted twice in `theirs`."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import esptool.__main__"], check=True)
    return time.perf_counter() - t0


def _station(where: Path, ports: list[str], registry: str):  # type: ignore[no-untyped-def]
    return config_from_dict(
        {
            "station": "bench-esp32",
            "registry": registry,
            "dialect": "esp32",
            "ports": ports,
            "baud": 115200,
            "poll_interval": 0.05,
            "ca": {"cert": "ca.crt", "key": "ca.key"},
            "sec_tags": [{"sec_tag": 42, "client": True}],
        },
        where,
    )


def _line(where: Path, ports: list[str], per_port: int, tag: str) -> tuple[float, int, dict]:
    cfg = _station(where, ports, str(where / f"{tag}.sqlite"))
    summary = Line(cfg, operator="bench", per_port=per_port).run()
    return summary.seconds, summary.provisioned, summary.counts


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class Run:
    seconds: float
    boards: int
    counts: dict
    host_cpu: float  # this process (the line): CPU seconds
    jig_cpu: float  # the jig process

    @property
    def rate(self) -> float:
        return self.boards / self.seconds


def _measured(where: Path, ports: list[str], per_port: int, tag: str, jig_pid: int) -> Run:
    h0, j0 = _own_cpu(), _cpu_of(jig_pid)
    seconds, boards, counts = _line(where, ports, per_port, tag)
    return Run(seconds, boards, counts, _own_cpu() - h0, _cpu_of(jig_pid) - j0)


def _line_pair(
    where: Path, ports: int, per_port: int, single: int, cores: tuple[set[int], set[int]] | None
) -> tuple[Run, Run]:
    """1 port, then all: jigs and line on every core (cores None), or each on its own."""
    pin_jigs = None if cores is None else (lambda: os.sched_setaffinity(0, cores[1]))
    sim = subprocess.Popen(
        [sys.executable, "-m", "provision", "line", "simulate", str(ports), "--dialect",
         "esp32", "--baud", "115200", "--json"],
        stdout=subprocess.PIPE, text=True, preexec_fn=pin_jigs,
    )  # fmt: skip
    every = os.sched_getaffinity(0)
    try:
        if cores is not None:
            os.sched_setaffinity(0, cores[0])  # the line's threads start from this one
        paths = json.loads(sim.stdout.readline())["ports"]  # type: ignore[union-attr]
        one = _measured(where, paths[:1], single, f"one{cores is None}", sim.pid)
        all_ = _measured(where, paths, per_port, f"all{cores is None}", sim.pid)
    finally:
        os.sched_setaffinity(0, every)
        sim.terminate()
        sim.wait(10)
    return one, all_


def bench_line(ports: int, per_port: int, single: int, shared_only: bool = False) -> None:
    os.environ[SEC_TAG_ENV] = "42"  # the partition does not record its tag: the line names it
    cores = sorted(os.sched_getaffinity(0))
    setups: list[tuple[str, tuple[set[int], set[int]] | None]] = [
        (f"jigs and line share all {len(cores)} cores (the goal's figure)", None)
    ]
    if len(cores) >= 2 and not shared_only:
        setups.append(
            (
                f"jigs on core {cores[-1]} only, line on the other{'s' if len(cores) > 2 else ''}"
                " (a real jig has its own CPU)",
                (set(cores[:-1]), {cores[-1]}),
            )
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"line, esp32 pty jigs at 115200 baud ({os.cpu_count()} cores, load average {load})")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        ca = create_root_ca("Bench ESP32 CA")
        (where / "ca.crt").write_bytes(cert_pem(ca.cert))
        (where / "ca.key").write_bytes(serialize_private_key(ca.key))
        (where / "ca.key").chmod(0o600)
        _line(where, ["jig://warm?kind=esp32&baud=0"], 1, "warm")  # imports, first-use costs
        for title, pinned in setups:
            one, all_ = _line_pair(where, ports, per_port, single, pinned)
            eff = all_.rate / (ports * one.rate)
            print(f" {title}:")
            for label, r in (("1 port ", one), (f"{ports} ports", all_)):
                print(
                    f"  {label}: {r.boards:4d} devices in {r.seconds:6.2f} s -> {r.rate:6.3f}"
                    f" devices/s  CPU per board: line {1e3 * r.host_cpu / r.boards:5.1f} ms,"
                    f" jigs {1e3 * r.jig_cpu / r.boards:5.1f} ms  {r.counts}"
                )
            print(
                f"  scaling efficiency = {all_.rate:.3f} / ({ports} x {one.rate:.3f}) = {eff:.3f}"
                f"  (goal >= 0.9: {'met' if eff >= 0.9 else 'NOT met'})"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bauds", default="115200,460800")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--ports", type=int, default=32)
    ap.add_argument("--per-port", type=int, default=6)
    ap.add_argument("--single", type=int, default=6, help="devices for the 1-port rate")
    ap.add_argument("--skip-write", action="store_true", help="the line only")
    ap.add_argument("--skip-line", action="store_true", help="write + verify only")
    ap.add_argument(
        "--shared-only", action="store_true", help="the line: only the goal's setup (no pinning)"
    )
    args = ap.parse_args()
    if not args.skip_write:
        bench_write(args.bauds, args.runs)
    if not args.skip_line:
        bench_line(args.ports, args.per_port, args.single, args.shared_only)


def bench_write(bauds: str, runs: int) -> None:
    image_bytes = esc.encode(esp_pack.entries_for(_credentials()))
    with tempfile.TemporaryDirectory() as d:
        image = Path(d) / "esp_secure_cert.bin"
        image.write_bytes(image_bytes)
        print(f"image: {len(image_bytes)} bytes (partition 0x2000), P-256 set, PEM")
        boot = min(startup() for _ in range(runs))
        print(f"python + import esptool: {boot:.2f} s per esptool run")
        print(
            f"{'baud':>8} {'ours s':>8} {'esptool s':>10} {'esptool/ours':>13} "
            f"{'(less 2 start-ups)':>19}"
        )
        for baud in (int(b) for b in bauds.split(",")):
            o = min(ours(baud) for _ in range(runs))
            t = min(theirs(baud, image) for _ in range(runs))
            print(f"{baud:>8} {o:>8.2f} {t:>10.2f} {t / o:>13.2f} {(t - 2 * boot) / o:>19.2f}")


if __name__ == "__main__":
    main()
