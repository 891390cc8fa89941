"""Factory-line benchmarks; prints figures and ratios (no pass/fail thresholds in tests).

1. Scaling: `provision line simulate 32` (pty jigs at emulated 115200 baud, in their own
   process, on the wall clock) and the line on 1 port, then on all 32. Prints devices/hour
   and the scaling efficiency = rate(32 ports) / (32 x rate(1 port)); the goal (issue 16) is
   >= 0.95 on an idle machine.
2. Issuance + registry without devices (key, certificate, claim, hash-chained record) at two
   sizes, each in a fresh process: devices/second, tracemalloc peak and ru_maxrss. Flat
   memory means the peak does not grow with N.

    python bench/bench_line.py [--ports 32] [--per-port 6] [--sizes 2000,10000]
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
import tracemalloc
from pathlib import Path

from provision.line import Line
from provision.line.config import config_from_dict
from provision.line.issuer import Issuer
from provision.line.station import StationContext, registry_entry, utc_now
from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key
from provision.registry import Result, open_registry

# Issue 16: 32 ports give at least this share of 32 x one port's rate, on an idle machine.
SCALING_GOAL = 0.95


def _ca(where: Path) -> None:
    ca = create_root_ca("Bench CA")
    (where / "ca.crt").write_bytes(cert_pem(ca.cert))
    (where / "ca.key").write_bytes(serialize_private_key(ca.key))
    os.chmod(where / "ca.key", 0o600)


def _config(where: Path, ports: list[str], registry: str):  # type: ignore[no-untyped-def]
    return config_from_dict(
        {
            "station": "bench",
            "registry": registry,
            "dialect": "native",
            "ports": ports,
            "baud": 115200,
            "poll_interval": 0.05,
            "ca": {"cert": "ca.crt", "key": "ca.key"},
        },
        where,
    )


def _run_line(where: Path, ports: list[str], per_port: int, tag: str) -> tuple[float, int, dict]:
    cfg = _config(where, ports, str(where / f"{tag}.sqlite"))
    summary = Line(cfg, operator="bench", per_port=per_port).run()
    return summary.seconds, summary.provisioned, summary.counts


def bench_scaling(ports: int, per_port: int, single: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        _ca(where)
        cli = [sys.executable, "-c", "from provision.cli.main import run; run()"]
        sim = subprocess.Popen(
            [*cli, "line", "simulate", str(ports), "--baud", "115200", "--json"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            ready = json.loads(sim.stdout.readline())  # type: ignore[union-attr]
            paths = ready["ports"]
            s1, n1, c1 = _run_line(where, paths[:1], single, "one")
            rate1 = n1 / s1
            sN, nN, cN = _run_line(where, paths, per_port, "all")
            rateN = nN / sN
        finally:
            sim.terminate()
            sim.wait(10)
    eff = rateN / (ports * rate1)
    print(f"line scaling (native dialect, pty jigs at 115200 baud, {os.cpu_count()} cores)")
    print(f"  1 port : {n1:4d} devices in {s1:6.2f} s  -> {rate1 * 3600:9.0f} devices/hour  {c1}")
    print(f"  {ports} ports: {nN:4d} devices in {sN:6.2f} s  -> {rateN * 3600:9.0f} devices/hour")
    print(f"           {cN}")
    print(
        f"  scaling efficiency = {rateN * 3600:.0f} / ({ports} x {rate1 * 3600:.0f}) = {eff:.3f}"
        f"  (goal >= {SCALING_GOAL}: {'met' if eff >= SCALING_GOAL else 'NOT met'})"
    )


def issue_run(n: int) -> dict[str, float]:
    """N devices through issuance and the registry, no device IO. Runs in its own process.

    The line's own path (provision.line.station) without the device: the registry half of
    the check (latest record), claim (which allocates the serial), issue with that serial,
    record the entry the station records, releasing the claim.
    """
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        _ca(where)
        cfg = _config(where, ["jig://none"], str(where / "reg.sqlite"))
        issuer = Issuer(cfg)
        tracemalloc.start()
        t0 = time.perf_counter()
        fifth = max(1, n // 5)
        marks: list[float] = []
        with open_registry(cfg.registry) as reg:
            ctx = StationContext(cfg, issuer, reg, "bench")
            for i in range(n):
                if i in (fifth, n - fifth):
                    marks.append(time.perf_counter())
                device_id = f"dev-{i:06d}"
                started = utc_now()
                reg.latest(device_id)
                claim = reg.claim(device_id, cfg.station)
                issued = issuer.issue_with_key(device_id, claim.serial)
                reg.record(registry_entry(ctx, issued, device_id, started, Result.OK), claim=claim)
            seconds = time.perf_counter() - t0
            first_rate = fifth / (marks[0] - t0)
            last_rate = fifth / (t0 + seconds - marks[1])
            _, peak = tracemalloc.get_traced_memory()
            verify_t0 = time.perf_counter()
            ok = reg.verify().ok
            verify_s = time.perf_counter() - verify_t0
        tracemalloc.stop()
    return {
        "n": n,
        "seconds": seconds,
        "per_second": n / seconds,
        "tracemalloc_peak_kib": peak / 1024,
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "verify_seconds": verify_s,
        "first_fifth_per_second": first_rate,
        "last_fifth_per_second": last_rate,
        "chain_ok": ok,
    }


def bench_issuance(sizes: list[int]) -> None:
    print(
        "issuance + registry (SQLite WAL, synchronous=FULL; the line's path: claim with its "
        "serial, key, cert, chained record)"
    )
    results = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--issue-only", str(n)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        print(
            f"  N={r['n']:6d}: {r['per_second']:7.0f} devices/s ({r['seconds']:.1f} s), "
            f"tracemalloc peak {r['tracemalloc_peak_kib']:7.0f} KiB, ru_maxrss "
            f"{r['maxrss_mib']:5.1f} MiB, verify {r['verify_seconds']:.2f} s, chain ok "
            f"{r['chain_ok']}"
        )
        print(
            f"           first fifth {r['first_fifth_per_second']:7.0f}/s, last fifth "
            f"{r['last_fifth_per_second']:7.0f}/s (fsync-bound: varies with other IO on the disk)"
        )
    if len(results) >= 2:
        a, b = results[0], results[-1]
        print(
            f"  memory growth from N={a['n']} to N={b['n']}: tracemalloc peak x"
            f"{b['tracemalloc_peak_kib'] / a['tracemalloc_peak_kib']:.2f}, ru_maxrss x"
            f"{b['maxrss_mib'] / a['maxrss_mib']:.2f} (flat = about x1.0 for x"
            f"{b['n'] / a['n']:.0f} devices)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=32)
    parser.add_argument("--per-port", type=int, default=20)
    parser.add_argument("--single", type=int, default=20, help="devices for the 1-port rate")
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--issue-only", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    if args.issue_only:
        print(json.dumps(issue_run(args.issue_only)))
        return
    if not args.skip_scaling:
        bench_scaling(args.ports, args.per_port, args.single)
    bench_issuance([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
