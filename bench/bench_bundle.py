"""Bundles packed + parsed per second (issue 2 goal: >= 20,000/s for a typical device set).

One iteration = `format.encode()` of a CredentialSet + `format.decode()` of the bytes (the
fenced compiled path, which checks magic, version, SHA-256, every CRC, the exact end of
data, every rule, and that re-encoding gives the same bytes). The checked-only path
(`build_checked` + `decode_checked`, construct without compile()) is printed beside it.

The device set is the committed test PKI (tests/vectors/fixtures): root_ca, client_cert and
client_key in one sec_tag, as PEM (~1.5 KB, "typical") and as DER (~1 KB).
Rates are per CPU second of this process (user + system), because the machine is shared;
wall-clock rates are printed beside them. Exits 1 with --check if the goal is missed.

    .venv/bin/python bench/bench_bundle.py [--seconds 2] [--check]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from provision.bundle import format as fmt
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType

GOAL = 20_000.0
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "fixtures"


def device_set(encoding: Encoding) -> CredentialSet:
    ext = {Encoding.PEM: ("root-ca.pem", "device.pem", "device.key"),
           Encoding.DER: ("root-ca.der", "device.der", "device.key.der")}[encoding]  # fmt: skip
    root, cert, key = ((FIXTURES / name).read_bytes() for name in ext)
    return CredentialSet.of(
        [
            Slot(42, SlotType.ROOT_CA, encoding, root),
            Slot(42, SlotType.CLIENT_CERT, encoding, cert),
            Slot(42, SlotType.CLIENT_KEY, encoding, key),
        ],
        device_id="dev-0001",
    )


def measure(step: Callable[[], object], seconds: float) -> tuple[float, float]:
    """(iterations per CPU second, per wall second) over about `seconds` of wall time."""
    for _ in range(200):
        step()  # warm up caches and the compiled parsers
    n = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    deadline = wall0 + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            step()
        n += 100
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return n / max(cpu, 1e-9), n / wall


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is missed")
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"goal: >= {GOAL:,.0f} bundles packed + parsed per second (one core)")
    typical_rate = 0.0
    for encoding, label in ((Encoding.PEM, "typical"), (Encoding.DER, "der")):
        cs = device_set(encoding)
        data = fmt.encode(cs)
        assert fmt.decode(data).credentials == cs

        def fast(cs: CredentialSet = cs) -> object:
            return fmt.decode(fmt.encode(cs))

        def checked(cs: CredentialSet = cs) -> object:
            return fmt.decode_checked(fmt.build_checked(cs))

        cpu, wall = measure(fast, args.seconds)
        ccpu, cwall = measure(checked, args.seconds / 2)
        if label == "typical":
            typical_rate = cpu
        print(
            f"{label:8} set, {len(data):5} bytes: encode+decode {cpu:9,.0f}/s cpu "
            f"({wall:9,.0f}/s wall), ratio to goal {cpu / GOAL:5.2f}x | checked-only path "
            f"{ccpu:7,.0f}/s cpu ({cwall:7,.0f}/s wall), fast/checked {cpu / ccpu:4.1f}x"
        )
    ok = typical_rate >= GOAL
    print(f"result: {'goal met' if ok else 'goal NOT met'} ({typical_rate / GOAL:.2f}x of goal)")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
