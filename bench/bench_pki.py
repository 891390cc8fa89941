"""Certificates issued per second: provision.pki in one process vs loops of the openssl CLI.

Every side does the same job per certificate: a fresh P-256 device key and a certificate
(CN, basicConstraints, keyUsage, EKU clientAuth, SKI, AKI) signed by a P-256 CA with
ECDSA-SHA256, key (PKCS#8) and certificate as PEM. In process, two APIs are timed:

- `Authority.issue_client` (key and certificate objects) + serialize_private_key + cert_pem;
- `Authority.issue_client_bytes` (DER of both, what a line writes) + its PEM.

Both go through the authority's TBS template (provision/pki/tbs_template.py). Three openssl
loops are timed:

- "CSR flow": genpkey, req -new, x509 -req (three processes per certificate: the
  key -> CSR -> certificate path of the mTLS how-tos);
- "2 procs": genpkey, req -x509 -CA;
- "1 proc": req -x509 -newkey ec -CA -nodes (OpenSSL 3: key and certificate in one process,
  the cheapest way the CLI does the job).

Goals (issue 2): >= 100x the openssl loop and >= 3,000 certificates/s on one core. The
verdict compares the faster in-process API with the fastest openssl loop measured; every
other pairing is printed too. "On one core" is CPU time (user + system; for openssl, the
CLI processes' plus the spawning parent's) on one pinned core: the machine is shared, and
wall time depends on what else runs. Wall-clock figures are printed beside. --check exits 1
when a goal is missed.

    .venv/bin/python bench/bench_pki.py [--seconds 3] [--openssl-iterations 40] [--rounds 8]
        [--check]
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provision.pki.authority import Authority, create_root_ca
from provision.pki.certs import cert_pem
from provision.pki.keys import serialize_private_key

GOAL_RATE = 3000.0
GOAL_RATIO = 100.0
EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    "extendedKeyUsage=clientAuth",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid",
)


@dataclass
class Sample:
    count: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.cpu

    @property
    def wall_rate(self) -> float:
        return self.count / self.wall


def pin_one_core() -> str:
    try:
        # The last core: helpers that pin tend to take the first.
        core = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _objects(ca: Authority, device_id: str) -> None:
    key, cert = ca.issue_client(device_id)
    serialize_private_key(key)
    cert_pem(cert)


def _bytes(ca: Authority, device_id: str) -> None:
    issued = ca.issue_client_bytes(device_id)
    issued.key_pem  # noqa: B018 - the PEM is part of the job
    issued.cert_pem  # noqa: B018


class InProcess:
    """One in-process API, timed in slices between the other contestants' slices."""

    def __init__(self, job: Callable[[Authority, str], None]) -> None:
        self.job = job
        self.ca = create_root_ca("Bench CA")
        self.sample = Sample()
        for i in range(50):  # warm up the backend and caches (and make the TBS template)
            job(self.ca, f"warm-{i}")

    def run(self, seconds: float) -> None:
        job, ca, count = self.job, self.ca, self.sample.count
        start, cpu0 = time.perf_counter(), time.process_time()
        deadline = start + seconds
        while True:
            for _ in range(100):
                job(ca, f"dev-{count:08d}")
                count += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        self.sample.wall += now - start
        self.sample.cpu += time.process_time() - cpu0
        self.sample.count = count


def _csr_flow(run: Callable[..., None], i: int) -> None:
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"k{i}")
    run("req", "-new", "-key", f"k{i}", "-subj", f"/CN=dev-{i:08d}", "-out", f"r{i}")
    run("x509", "-req", "-in", f"r{i}", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial",
        str(1000 + i), "-days", "365", "-extfile", "ext.cnf", "-out", f"c{i}")  # fmt: skip


def _two_procs(run: Callable[..., None], i: int) -> None:
    run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"k{i}")
    args = ["req", "-new", "-key", f"k{i}", "-subj", f"/CN=dev-{i:08d}", "-x509"]
    args += ["-CA", "ca.crt", "-CAkey", "ca.key", "-days", "365", "-out", f"c{i}"]
    for ext in EXTENSIONS[:3]:  # req -x509 -CA adds SKI and AKI itself
        args += ["-addext", ext]
    run(*args)


def _one_proc(run: Callable[..., None], i: int) -> None:
    args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    args += ["-keyout", f"k{i}", "-subj", f"/CN=dev-{i:08d}"]
    args += ["-CA", "ca.crt", "-CAkey", "ca.key", "-days", "365", "-out", f"c{i}"]
    for ext in EXTENSIONS[:3]:
        args += ["-addext", ext]
    run(*args)


class OpensslLoop:
    """One openssl loop in its own directory with its own CA, timed in slices."""

    def __init__(self, job: Callable[..., None], tmp: Path) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise SystemExit("openssl not found: cannot run the comparison")
        self.openssl, self.job, self.dir = openssl, job, tmp
        self.sample = Sample()
        (tmp / "ext.cnf").write_text("\n".join(EXTENSIONS) + "\n")
        self.call("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", "ca.key")  # fmt: skip
        self.call("req", "-new", "-x509", "-key", "ca.key", "-subj", "/CN=Bench CA", "-days",
                  "3650", "-out", "ca.crt")  # fmt: skip

    def call(self, *args: str) -> None:
        subprocess.run([self.openssl, *args], cwd=self.dir, check=True, capture_output=True)

    def run(self, iterations: int) -> None:
        first = self.sample.count
        start, cpu0 = time.perf_counter(), time.process_time() + children_cpu()
        for i in range(first, first + iterations):
            self.job(self.call, i)
        self.sample.cpu += time.process_time() + children_cpu() - cpu0
        self.sample.wall += time.perf_counter() - start
        self.sample.count += iterations

    def check(self) -> None:
        """Every loop must have made what the in-process side makes: check the last one."""
        last = self.dir / f"c{self.sample.count - 1}"
        text = subprocess.run([self.openssl, "x509", "-in", last, "-noout", "-text"],
            check=True, capture_output=True, text=True).stdout  # fmt: skip
        for part in ("CA:FALSE", "Digital Signature", "TLS Web Client Authentication",
                     "Subject Key Identifier", "Authority Key Identifier"):  # fmt: skip
            if part not in text:
                raise SystemExit(f"openssl loop {self.job.__name__}: certificate lacks {part}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="in-process run time per API")
    ap.add_argument("--openssl-iterations", type=int, default=40, help="per openssl loop")
    ap.add_argument("--rounds", type=int, default=8, help="slices each contestant is run in")
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = ap.parse_args()

    pinned = pin_one_core()
    print(f"pki issue: P-256 keygen + sign + PEM of key and certificate, {pinned}")
    print(f"  (every contestant runs in {args.rounds} slices, taking turns: all see the same "
          "load on this shared machine)")  # fmt: skip
    ours = {
        "issue_client (objects)": InProcess(_objects),
        "issue_client_bytes": InProcess(_bytes),
    }
    with tempfile.TemporaryDirectory() as tmp:
        loops = {}
        for label, job in (
            ("CSR flow (3 procs)", _csr_flow), ("2 procs", _two_procs), ("1 proc", _one_proc)
        ):  # fmt: skip
            (Path(tmp) / job.__name__).mkdir()
            loops[label] = OpensslLoop(job, Path(tmp) / job.__name__)
        per_round = max(1, args.openssl_iterations // args.rounds)
        for _ in range(args.rounds):
            for contestant in ours.values():
                contestant.run(args.seconds / args.rounds)
            for loop in loops.values():
                loop.run(per_round)
        for loop in loops.values():
            loop.check()
    for label, c in ours.items():
        r = c.sample
        print(f"  provision.pki {label:24s}: {r.count:6d} certs, {r.cpu:5.2f} s CPU = "
              f"{r.rate:8.1f}/s (wall {r.wall:5.2f} s = {r.wall_rate:8.1f}/s)")  # fmt: skip
    for label, loop in loops.items():
        o = loop.sample
        ratios = ", ".join(
            f"{name.split()[0]} {c.sample.rate / o.rate:6.1f}x" for name, c in ours.items()
        )
        print(f"  openssl {label:18s}: {o.count:6d} certs, {o.cpu:5.2f} s CPU = {o.rate:8.1f}/s "
              f"(wall {o.wall:5.2f} s = {o.wall_rate:6.1f}/s) -> ratio {ratios}")  # fmt: skip
    best_label, best = max(((k, c.sample) for k, c in ours.items()), key=lambda kv: kv[1].rate)
    loop_label, loop = max(((k, o.sample) for k, o in loops.items()), key=lambda kv: kv[1].rate)
    ratio = best.rate / loop.rate
    print(f"  goal ratio >= {GOAL_RATIO:.0f}x: {best_label} vs the fastest openssl loop "
          f"({loop_label}): {ratio:.1f}x (wall {best.wall_rate / loop.wall_rate:.1f}x) "
          f"({'met' if ratio >= GOAL_RATIO else 'NOT met'})")  # fmt: skip
    print(f"  goal rate  >= {GOAL_RATE:.0f}/s on one core: {best.rate:.0f}/s "
          f"({'met' if best.rate >= GOAL_RATE else 'NOT met'})")  # fmt: skip
    met = best.rate >= GOAL_RATE and ratio >= GOAL_RATIO
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
