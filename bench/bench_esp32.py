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

    .venv/bin/python bench/bench_esp32.py [--bauds 115200,460800]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import provision.device
from provision.bundle import esp_secure_cert as esc
from provision.bundle.spec import PackSources, TagSources
from provision.dialects import esp32_image as esp_pack
from provision.dialects.esp32 import Esp32Session
from provision.packing import read_credentials
from provision.transport.base import open_transport

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
        transport = open_transport(sim.port)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bauds", default="115200,460800")
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args()
    image_bytes = esc.encode(esp_pack.entries_for(_credentials()))
    with tempfile.TemporaryDirectory() as d:
        image = Path(d) / "esp_secure_cert.bin"
        image.write_bytes(image_bytes)
        print(f"image: {len(image_bytes)} bytes (partition 0x2000), P-256 set, PEM")
        boot = min(startup() for _ in range(args.runs))
        print(f"python + import esptool: {boot:.2f} s per esptool run")
        print(
            f"{'baud':>8} {'ours s':>8} {'esptool s':>10} {'esptool/ours':>13} "
            f"{'(less 2 start-ups)':>19}"
        )
        for baud in (int(b) for b in args.bauds.split(",")):
            o = min(ours(baud) for _ in range(args.runs))
            t = min(theirs(baud, image) for _ in range(args.runs))
            print(f"{baud:>8} {o:>8.2f} {t:>10.2f} {t / o:>13.2f} {(t - 2 * boot) / o:>19.2f}")


if __name__ == "__main__":
    main()
