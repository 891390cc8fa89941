"""One P-256 device set through native, at-cmng, zephyr-shell and at-shell on the same line.

Issue 5 goal: the native protocol at least 1.5x faster than at-cmng. Each dialect writes the
committed test set (tests/vectors/fixtures: root_ca + client_cert + client_key in one
sec_tag) to a fresh simulator over `sim://<kind>?baud=...` and then verifies it against the
device's digests, as `provision device write` does. The set is read from files by the same
loader as `bundle pack` / `device write`, three ways: DER files and PEM files with the default
encoding (compact: DER in the bundle, ~1 KB, what issue 3 calls the device set; the text
dialects turn it back into PEM for their devices), and PEM files with `--encoding keep` (the
old default: the native link then carries PEM too).

"seconds" is the emulated line's time (the simulator's virtual clock: 10 bit times per byte
at the baud rate, both directions, plus the device's flash and processing time from the same
device profile for every dialect), so the figures do not depend on this machine's load.
"bytes" counts host->device and device->host bytes on the wire.

    .venv/bin/python bench/bench_dialects.py [--baud 115200] [--check]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import provision.device
from provision.bundle.model import CredentialSet
from provision.bundle.spec import PackSources, TagSources
from provision.errors import ProvisionError
from provision.packing import read_credentials

GOAL = 1.5  # native at least this many times faster than at-cmng
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "fixtures"
DIALECTS = ("native", "at-cmng", "zephyr-shell", "at-shell")
# at-shell: a board built with a shell command buffer that holds a certificate line.
URL_OPTIONS = {"at-shell": "&cmd_buff_size=4096"}


# (name, files, encoding): the goal is checked on the default-encoding runs.
SETS = (
    ("DER files", ("root-ca.der", "device.der", "device.key.der"), "compact"),
    ("PEM files", ("root-ca.pem", "device.pem", "device.key"), "compact"),
    ("PEM files", ("root-ca.pem", "device.pem", "device.key"), "keep"),
)


def device_set(names: tuple[str, str, str], encoding: str) -> CredentialSet:
    root, cert, key = (FIXTURES / name for name in names)
    tag = TagSources(42, root_ca=(root,), client_cert=cert, client_key=key)
    return read_credentials(PackSources((tag,), device_id="dev-0001", encoding=encoding))


class Counting:
    """Wraps a transport to count what crosses the wire in each direction."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.sent = 0
        self.received = 0

    def write(self, data: bytes) -> None:
        self.sent += len(data)
        self.inner.write(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        data = self.inner.read(max_bytes, timeout)
        self.received += len(data)
        return data

    def clock(self) -> float:
        return self.inner.clock()

    def close(self) -> None:
        self.inner.close()


def run(dialect: str, baud: int, credentials: CredentialSet) -> dict[str, float]:
    from provision.urls import open_url as open_transport

    url = f"sim://{dialect}?baud={baud}{URL_OPTIONS.get(dialect, '')}"
    transport = Counting(open_transport(url))
    cls = provision.dialects.session_class(dialect)
    session = cls(transport, timeout=2.0, retries=3)
    device = provision.device.Device(session, f"sim://{dialect}")
    t0, sent0, recv0 = transport.clock(), transport.sent, transport.received
    wall0 = time.perf_counter()
    device.write(credentials)
    report = device.verify(credentials)
    wall = time.perf_counter() - wall0
    if not report.ok:
        raise SystemExit(f"{dialect}: verify failed: {report.mismatches}")
    seconds = transport.clock() - t0
    device.close()
    return {
        "seconds": seconds,
        "sent": transport.sent - sent0,
        "received": transport.received - recv0,
        "wall": wall,
    }


def report(name: str, files: tuple[str, str, str], encoding: str, baud: int) -> float | None:
    """Print one table; return how many times faster native is than at-cmng."""
    credentials = device_set(files, encoding)
    raw = sum(len(s.data) for s in credentials)
    stored = "/".join(sorted({s.encoding.label.upper() for s in credentials}))
    print(
        f"\n{name} (--encoding {encoding}: {stored} in the bundle): 3 slots, {raw} bytes; "
        f"line {baud} baud 8N1"
    )
    results: dict[str, dict[str, float]] = {}
    for dialect in DIALECTS:
        try:
            results[dialect] = run(dialect, baud, credentials)
        except (ProvisionError, ImportError) as err:
            print(f"{dialect:13s} unavailable: {err}")
    base = results.get("native")
    print(f"{'dialect':13s} {'h->d bytes':>10s} {'d->h bytes':>10s} {'seconds':>8s} "
          f"{'x native':>9s} {'wall s':>7s}")  # fmt: skip
    for dialect, r in results.items():
        ratio = f"{r['seconds'] / base['seconds']:9.2f}" if base else "      n/a"
        print(
            f"{dialect:13s} {r['sent']:10.0f} {r['received']:10.0f} {r['seconds']:8.3f} "
            f"{ratio} {r['wall']:7.3f}"
        )
    if base is None or "at-cmng" not in results:
        print("native path not available: at-cmng vs zephyr-shell only")
        return None
    return results["at-cmng"]["seconds"] / base["seconds"]


FAST_GOAL = 10.0  # native at its negotiated rate vs at-cmng at the opening rate, whole command


def whole_command(
    dialect: str, baud: int, credentials: CredentialSet, fast: str | None, extra: str = ""
) -> float:
    """`provision device write` on the virtual clock: open (HELLO, and the switch with
    --fast-baud), validate, write, verify, close (the switch back)."""
    import provision.device as device_mod

    url = f"sim://{dialect}?baud={baud}{URL_OPTIONS.get(dialect, '')}{extra}"
    opened: list = []
    real_open_url = device_mod.open_url

    def keep(*args, **kw):  # type: ignore[no-untyped-def]
        opened.append(real_open_url(*args, **kw))
        return opened[-1]

    device_mod.open_url = keep  # type: ignore[assignment]
    try:
        dev = provision.device.open(url, dialect=dialect, fast_baud=fast)
    finally:
        device_mod.open_url = real_open_url  # type: ignore[assignment]
    dev.provision(credentials)
    dev.close()
    return opened[0].clock()


def fast_report(baud: int) -> None:
    credentials = device_set(SETS[0][1], SETS[0][2])
    at_cmng = whole_command("at-cmng", baud, credentials, None)
    print(f"\nwhole command (open .. close), DER P-256 set; at-cmng at {baud}: "
          f"{at_cmng * 1000:.1f} ms")  # fmt: skip
    # The simulator's default rates end at 921600 (an MCU UART); USB-CDC and FTDI bridges
    # run to 3 Mbaud.
    for rates in ("", "&rates=115200,921600,3000000"):
        native = whole_command("native", baud, credentials, "auto", rates)
        speedup = at_cmng / native
        top = "921600" if not rates else "3000000"
        verdict = "met" if speedup >= FAST_GOAL else "MISSED"
        print(
            f"  native opened at {baud}, --fast-baud auto -> {top}: {native * 1000:.1f} ms, "
            f"{speedup:.1f}x faster (goal >= {FAST_GOAL:.0f}x): {verdict}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args()
    speedups = {(name, enc): report(name, files, enc, args.baud) for name, files, enc in SETS}
    print()
    missed = False
    for (name, enc), speedup in speedups.items():
        if speedup is None:
            print(f"{name}: goal not checked (no native path)")
            continue
        checked = enc == "compact"  # the default; keep is shown for comparison only
        verdict = ("met" if speedup >= GOAL else "MISSED") if checked else "not a goal"
        missed |= checked and speedup < GOAL
        print(
            f"{name}, --encoding {enc}: native is {speedup:.2f}x faster than at-cmng "
            f"(goal >= {GOAL}x): {verdict}"
        )
    fast_report(args.baud)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
