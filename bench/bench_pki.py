"""Certificates issued per second: provision.pki in one process vs a loop of the openssl CLI.

Both sides do the same job per certificate: a fresh P-256 device key, a certificate with
CN, basicConstraints, keyUsage, EKU clientAuth, SKI and AKI, signed by a P-256 CA with
ECDSA-SHA256, and the key and certificate as PEM. The openssl side runs `genpkey` and
`req -x509 -CA` per certificate (two processes, as a shell script would).

Goals (issue 2): >= 100x the openssl loop and >= 3,000 certificates/s on one core.
"On one core" is measured as CPU time (user + system; for openssl, the CLI processes' and the
spawning parent's), because the machine is shared and wall time depends on what else runs.
Wall-clock figures are printed beside them. Exits 1 if a goal is missed and --check is given.

    .venv/bin/python bench/bench_pki.py [--seconds 3] [--openssl-iterations 20] [--check]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provision.pki.authority import create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key

GOAL_RATE = 3000.0
GOAL_RATIO = 100.0


def pin_one_core() -> str:
    # The goal is "on one core": keep the OS from spreading the process over both.
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        return "pinned to one core"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_inprocess(seconds: float) -> tuple[int, float, float]:
    ca = create_root_ca("Bench CA")
    # Warm up imports, the CA key object and the OpenSSL backend.
    for i in range(50):
        key, cert = ca.issue_client(f"warm-{i}")
        serialize_private_key(key), cert_pem(cert)
    count = 0
    start = time.perf_counter()
    cpu0 = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(100):
            key, cert = ca.issue_client(f"dev-{count:08d}")
            serialize_private_key(key)
            cert_pem(cert)
            count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count, now - start, time.process_time() - cpu0


def bench_openssl(iterations: int) -> tuple[int, float, float]:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("openssl not found: cannot run the comparison")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)

        def run(*args: str) -> None:
            subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True)

        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key")
        run(
            "req",
            "-new",
            "-x509",
            "-key",
            "ca.key",
            "-subj",
            "/CN=Bench CA",
            "-days",
            "3650",
            "-out",
            "ca.crt",
        )
        start = time.perf_counter()
        cpu0 = time.process_time() + children_cpu()
        for i in range(iterations):
            run(
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                f"k{i}.pem",
            )
            run(
                "req",
                "-new",
                "-key",
                f"k{i}.pem",
                "-subj",
                f"/CN=dev-{i:08d}",
                "-x509",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-days",
                "365",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-addext",
                "keyUsage=critical,digitalSignature",
                "-addext",
                "extendedKeyUsage=clientAuth",
                "-out",
                f"c{i}.pem",
            )
        cpu = time.process_time() + children_cpu() - cpu0
        return iterations, time.perf_counter() - start, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="in-process run time")
    ap.add_argument("--openssl-iterations", type=int, default=20)
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = ap.parse_args()

    pinned = pin_one_core()
    n, wall, cpu = bench_inprocess(args.seconds)
    m, o_wall, o_cpu = bench_openssl(args.openssl_iterations)
    rate, o_rate = n / cpu, m / o_cpu
    wall_rate, o_wall_rate = n / wall, m / o_wall
    ratio, wall_ratio = rate / o_rate, wall_rate / o_wall_rate
    print(f"pki issue (P-256 keygen + sign + PEM), {pinned}")
    print(
        f"  provision.pki in-process : {n:6d} certs, {cpu:6.2f} s CPU = {rate:8.1f}/s "
        f"(wall {wall:5.2f} s = {wall_rate:8.1f}/s)"
    )
    print(
        f"  openssl CLI loop         : {m:6d} certs, {o_cpu:6.2f} s CPU = {o_rate:8.1f}/s "
        f"(wall {o_wall:5.2f} s = {o_wall_rate:8.1f}/s)"
    )
    print(
        f"  ratio (CPU time)         : {ratio:8.1f}x   goal >= {GOAL_RATIO:.0f}x "
        f"(wall-clock ratio {wall_ratio:.1f}x)"
    )
    print(f"  rate  (CPU time)         : {rate:8.1f}/s  goal >= {GOAL_RATE:.0f}/s")
    met = rate >= GOAL_RATE and ratio >= GOAL_RATIO
    print(f"  goals {'met' if met else 'NOT met'}")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
