"""Native DATA chunk size on a noisy line: fixed at the largest vs adapted to the losses.

    .venv/bin/python bench/bench_chunk_size.py [--sessions 200] [--rate 0.004] [--json]

How it is measured: `Device.provision` of a ~1.4 KB set (root CA, client cert, client key,
P-256 PEM; the sets of tests/faults) over sim://native on its virtual clock, with `rate`
per-byte faults in both directions (half bit flips, half drops), seeds 0..sessions-1. For
each mode: sessions that ended with the new set, and bytes on the wire (host to device,
framing and retransmissions included) per successful session,
mean and 90th percentile. The same seeds and line faults for both modes; only
`NativeSession.adaptive_chunks` differs. Figures, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "faults"))

from faultkit import base_flash, sets

from provision.device import Device
from provision.dialects.native import NativeSession
from provision.errors import ProvisionError
from provision.sim.serve import SimTransport, build_runner


def run(adaptive: bool, seed: int, rate: float, folder: Path) -> tuple[bool, int]:
    flash = folder / "bench.flash"
    shutil.copy(base_flash("native", folder), flash)
    options = {"flash": str(flash), "flip": str(rate / 2), "drop": str(rate / 2), "seed": str(seed)}
    transport = SimTransport(build_runner("native", options, None))
    ok = True
    try:
        session = NativeSession(transport, timeout=0.5, retries=5)
        session.adaptive_chunks = adaptive
        Device(session, "bench").provision(sets()[1])
    except ProvisionError:
        ok = False
    return ok, transport.runner.rx_count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.004)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    figures = {}
    for mode, adaptive in (("fixed", False), ("adaptive", True)):
        results = [run(adaptive, seed, args.rate, folder) for seed in range(args.sessions)]
        sent = sorted(r[1] for r in results if r[0])
        figures[mode] = {
            "ok": sum(r[0] for r in results),
            "sessions": args.sessions,
            "bytes_mean": round(statistics.mean(sent)) if sent else None,
            "bytes_p90": sent[int(0.9 * (len(sent) - 1))] if sent else None,
        }
    shutil.rmtree(folder)
    payload = sum(len(s.data) for s in sets()[1])
    if args.json:
        print(json.dumps({"rate": args.rate, "payload": payload, **figures}))
        return
    print(f"{payload} B set, {args.rate:.2%} per-byte faults, {args.sessions} seeded sessions")
    for mode, f in figures.items():
        print(
            f"  {mode:9} ok {f['ok']:4}/{f['sessions']}   host->device bytes per success: "
            f"mean {f['bytes_mean']}, p90 {f['bytes_p90']}"
        )
    fixed, adaptive = figures["fixed"]["bytes_mean"], figures["adaptive"]["bytes_mean"]
    if fixed and adaptive:
        print(f"  adaptive / fixed bytes: {adaptive / fixed:.2f}")


if __name__ == "__main__":
    main()
