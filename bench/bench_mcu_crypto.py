"""Device-side crypto on Cortex-M (issue 15): the posix stub's KEYGEN and signed-bundle check,
with mbedTLS 2.28.3 built for the MCU, counted in instructions under QEMU and turned into
milliseconds for the chips the simulator's profiles stand for (provision/sim/profile.py
keygen_ms, verify_ms).

`make -C firmware_stub crypto-bench` builds firmware_stub/crypto_bench for three QEMU boards
(mps2-an385 Cortex-M3, mps2-an386 Cortex-M4, microbit nRF51822 Cortex-M0); each runs under
`-icount shift=0`, where virtual time advances 1 ns per instruction, so the board timer's ticks
count instructions (the program's calibration loop of 2,000,000 instructions checks that).
QEMU counts instructions, not cycles: the milliseconds below are instructions x CPI / clock,
the CPI being what the Cortex-M timing tables give for the traced instruction mix
(mcu_cycles.py; recorded below, `--cycles` traces it again), with a band at CPI 1 to 2.5.

Printed beside them: the profiles' modelled times and, when libmbedtls-dev is installed, the
posix stub measured on this host (bench_stub_crypto.py).

    .venv/bin/python bench/bench_mcu_crypto.py [--tarball mbedtls_2.28.3.orig.tar.gz]
                                               [--posix-runs 5 | --no-posix] [--cycles]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mcu_cycles

from provision.pki.csr import load_csr
from provision.sim.profile import PROFILES

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "firmware_stub"
ICOUNT_SHIFT = 0  # virtual ns per instruction = 2**shift
CALIBRATION = 2_000_000

BOARDS = {"mps2-an385": "Cortex-M3", "mps2-an386": "Cortex-M4", "microbit": "Cortex-M0"}


@dataclass(frozen=True)
class Target:
    """A chip a profile stands for: its clock (datasheet) and the CPI we assume for it."""

    chip: str
    board: str  # the QEMU board whose core runs the same instruction set
    core: str  # mcu_cycles' timing table
    clock_hz: float
    cpi: float
    why: str


# CPI from bench/mcu_cycles.py over the whole measurement program (`--cycles` derives it
# again, some 5 minutes a board): the M4 at a branch refill of 2 cycles (1-3 gives 1.52-1.88),
# the M0 with the single-cycle multiplier (MULS are 3.4 % of its instructions: the 32-cycle
# option would make it ~2.6).
TARGETS = {
    "default": Target(
        "nRF52840 (Cortex-M4F, 64 MHz)",
        "mps2-an386",
        "m4",
        64e6,
        1.696,
        "nRF52840 Product Specification v1.7: 64 MHz Arm Cortex-M4 with FPU",
    ),
    "small": Target(
        "nRF51822 (Cortex-M0, 16 MHz)",
        "microbit",
        "m0",
        16e6,
        1.554,
        "nRF51822 Product Specification (v3.x): 32-bit Arm Cortex-M0, 16 MHz",
    ),
}


def build(tarball: str | None, *extra: str, out: str = "crypto-bench") -> Path:
    args = [f"MBEDTLS_TARBALL={tarball}"] if tarball else []
    args += [f"CB_DIR=build/{out}", *extra]
    subprocess.run(["make", "-s", "-C", str(STUB), "crypto-bench", *args], check=True)
    return STUB / "build" / out


def qemu(elf: Path, board: str) -> list[str]:
    return ["qemu-system-arm", "-M", board, "-nographic", "-monitor", "none", "-serial", "null",
            "-icount", f"shift={ICOUNT_SHIFT}", "-semihosting-config", "enable=on,target=native",
            "-kernel", str(elf)]  # fmt: skip


def run_board(elf: Path, board: str) -> tuple[dict[str, list[int]], str, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        qemu(elf, board),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # semihosting's console is QEMU's stderr
        text=True,
        timeout=600,
    )
    wall = time.perf_counter() - start
    values: dict[str, list[int]] = {}
    csr = ""
    for line in proc.stdout.splitlines():
        name, _, value = line.partition(" ")
        if name == "csr":
            csr = value
        elif value.isdigit():
            values.setdefault(name, []).append(int(value))
    if proc.returncode != 0 or "result ok" not in proc.stdout:
        raise SystemExit(f"bench_mcu_crypto: {board} failed:\n{proc.stdout}")
    return values, csr, wall


def derive_cpi(tarball: str | None) -> dict[str, float]:
    """Price every instruction of one run of each target's program (mcu_cycles.py)."""
    elves = build(tarball, "CB_EXTRA=-DRUNS=1", out="crypto-bench-trace")
    cpi = {}
    print("\ncycles by the Cortex-M timing tables over one run of each (bench/mcu_cycles.py)")
    for name, target in TARGETS.items():
        start = time.perf_counter()
        mix = mcu_cycles.analyse(qemu(elves / target.board / "fw.elf", target.board), target.core)
        shares = ", ".join(
            f"{kind} {count / mix.instructions:.1%}" for kind, count in mix.classes.most_common(6)
        )
        # The trace must hold what the timer counted (it also holds the start-up before it).
        said = dict(line.split(" ", 1) for line in mix.console.splitlines() if " " in line)
        hz = int(said["timer_hz"])
        timed = insns(int(said["total_since_timer_start"]), hz)
        if not timed <= mix.instructions <= timed * 1.01:
            raise SystemExit(f"{target.board}: traced {mix.instructions:,}, timer {timed:,.0f}")
        refill = 2.0 if target.core == "m4" else 0.0
        cpi[name] = mix.cpi(refill)
        band = f"{mix.cpi(1.0):.2f}-{mix.cpi(3.0):.2f}" if target.core == "m4" else "-"
        print(
            f"  {target.board:<11} {mix.instructions:>12,} instructions traced"
            f" ({timed:,.0f} after the timer started)  CPI {cpi[name]:.2f}"
            f" (refill 1-3: {band})  {time.perf_counter() - start:.0f} s\n    {shares}"
        )
    return cpi


def insns(ticks: int, timer_hz: int) -> float:
    return ticks * 1e9 / timer_hz / 2**ICOUNT_SHIFT


def ms(count: float, target: Target, cpi: float) -> float:
    return count * cpi / target.clock_hz * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", help="mbedtls_*.orig.tar.gz instead of apt-get source")
    parser.add_argument("--posix-runs", type=int, default=10)
    parser.add_argument("--no-posix", action="store_true", help="skip the host measurement")
    parser.add_argument(
        "--cycles", action="store_true", help="derive the CPI from a trace (minutes per board)"
    )
    args = parser.parse_args()
    missing = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc") if not shutil.which(t)]
    if missing:
        print(f"bench_mcu_crypto: {', '.join(missing)} not installed")
        return 0
    began = time.perf_counter()
    try:
        elves = build(args.tarball)
    except subprocess.CalledProcessError:
        print(
            "bench_mcu_crypto: could not build (mbedTLS's source comes from `apt-get source"
            " mbedtls`, which needs deb-src lines in apt's sources, or from --tarball)"
        )
        return 0
    built = time.perf_counter() - began

    counts: dict[str, dict[str, float]] = {}
    print("mbedTLS 2.28.3 on Cortex-M under QEMU -icount shift=0: instructions (median of 3)")
    print(
        f"  {'board':<11} {'core':<10} {'keygen':>11} {'(key':>11} {'csr':>11} {'pem)':>8}"
        f" {'verify 1st':>11} {'verify':>11}  heap  stack  QEMU s"
    )
    for board, core in BOARDS.items():
        values, csr_hex, wall = run_board(elves / board / "fw.elf", board)
        hz = values["timer_hz"][0]
        calibrated = insns(values[f"calibration_{CALIBRATION}_insns"][0], hz)
        if abs(calibrated - CALIBRATION) > CALIBRATION * 1e-3:
            raise SystemExit(f"{board}: timer says {calibrated:.0f} for {CALIBRATION} insns")
        # mbedTLS 2.28 writes the ECDSA algorithm's parameters as NULL; load_csr repairs that.
        csr = load_csr(bytes.fromhex(csr_hex), f"{board} CSR").csr
        if not csr.is_signature_valid:
            raise SystemExit(f"{board}: the CSR's signature does not verify")

        def med(name: str, hz: int = hz, values: dict[str, list[int]] = values) -> float:
            return statistics.median(insns(t, hz) for t in values[name])

        parts = [med("keygen_gen"), med("keygen_csr"), med("keygen_pem")]
        row = {
            "keygen": sum(parts),
            "verify_cold": med("verify_cold"),
            "verify_warm": med("verify_warm"),
        }
        counts[board] = row
        print(
            f"  {board:<11} {core:<10} {row['keygen']:>11,.0f} {parts[0]:>11,.0f}"
            f" {parts[1]:>11,.0f} {parts[2]:>8,.0f} {row['verify_cold']:>11,.0f}"
            f" {row['verify_warm']:>11,.0f} {values['heap_max'][0]:>5} {values['stack_max'][0]:>6}"
            f" {wall:>6.1f}"
        )
    print(
        "  keygen = P-256 key (ecp_gen_key) + CSR signed (x509write_csr_der) + key as PEM and"
        " its SHA-256;\n  verify 1st = the first check after loading the signer (builds the"
        " generator's comb table), verify = every later one; heap/stack: peak bytes"
    )

    posix: dict[str, float] | None = None
    if not args.no_posix and Path("/usr/include/mbedtls/x509_csr.h").exists():
        import bench_stub_crypto  # beside this script

        posix = bench_stub_crypto.measure(args.posix_runs)

    cpis = derive_cpi(args.tarball) if args.cycles else {n: t.cpi for n, t in TARGETS.items()}
    print("\nmilliseconds = instructions x CPI / clock, beside the profiles (keygen_ms, verify_ms)")
    for name, target in TARGETS.items():
        profile = PROFILES[name]
        row = counts[target.board]
        cpi = cpis[name]
        source = "traced now" if args.cycles else "recorded; --cycles traces it again"
        print(f"  profile {name!r}: {target.chip}, CPI {cpi:.2f} ({source}), band at CPI 1-2.5")
        print(f"    clock: {target.why}")
        for what, count, modelled in (
            ("keygen", row["keygen"], profile.keygen_ms),
            ("verify", row["verify_cold"], profile.verify_ms),
            ("verify, later", row["verify_warm"], None),
        ):
            band = f"{ms(count, target, 1.0):.0f}-{ms(count, target, 2.5):.0f}"
            line = f"    {what:<14} {ms(count, target, cpi):7.0f} ms  ({band:>11})"
            if modelled is not None:
                ratio = modelled / ms(count, target, cpi)
                line += f"  profile {modelled:6.0f} ms  profile/derived {ratio:.2f}"
            print(line)
    if posix:
        print(
            f"  posix stub on this host (x86-64, median of {args.posix_runs}): KEYGEN round trip"
            f" {posix['keygen']:.1f} ms; COMMIT signed {posix['signed']:.1f} ms, unsigned"
            f" {posix['unsigned']:.1f} ms (the verify is their difference, in the noise when"
            f" the host is busy); TLS_CHECK {posix['handshake']:.1f} ms"
        )
    print(f"\nbuild {built:.1f} s, whole run {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
