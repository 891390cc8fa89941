"""Start-up and one-shot write times of the `provision` command beside vendors' tools.

    .venv/bin/python bench/bench_cli.py [--runs N] [--json]

Every figure is the median wall time of N runs (default 7) of a fresh process, measured in
the same run so machine load hits all tools alike:

  provision --help            the top-level help (goal: no slower than `esptool version`)
  provision device --help     a group's help (loads the device commands, not their work)
  esptool version             Espressif's esptool: start-up and one line of output
  nrfcredstore -h             Nordic's nrfcredstore: start-up and its help
  provision device write      one invocation: a P-256 set (root CA, client cert, client key)
                              written over AT%CMNG to `provision sim --dialect at-cmng --pty`
                              whose sec_tag is empty (a device's first provisioning; the tag
                              is emptied between runs, untimed). Goal: <= 0.5 s and >= 3x
                              faster than nrfcredstore's set
  ... renewal                 the same over the previous run's set: a new client cert and
                              key under the same root CA (the root stays, the rest is
                              replaced), each run a new pair
  ... same set again          the last set once more: nothing needs sending (shown, not a
                              goal)
  nrfcredstore write x3       the same set with Nordic's tool: one invocation per credential,
                              as its CLI takes one; only its port discovery is bypassed (it
                              lists USB ports, which a pty is not), as in tests/dialects. It
                              writes without looking (no delete, no digest check), so the
                              tag's state does not change its time

Ratios are provision / peer (below 1: provision is faster). Peers come from pip (the test
extras install both); a missing one is reported and skipped.

The peers are installed from wheels, which pip compiles to bytecode; provision, installed
editable, is compiled here first (`compileall`), as pip compiles it from a wheel. Without that,
a shell with PYTHONDONTWRITEBYTECODE=1 (CI, containers) compiles every provision module from
source on every run and the figures time the compiler (`--no-compile` shows them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
NRFCREDSTORE_ON_A_PTY = (
    "import sys, types\n"
    "from nrfcredstore import comms\n"
    "comms.select_device = lambda *a: (types.SimpleNamespace(device=sys.argv[1]), None)\n"
    "from nrfcredstore.cli import run\n"
    "sys.argv = ['nrfcredstore', *sys.argv[1:]]\n"
    "sys.exit(run())\n"
)


FRESH = "provision device write (P-256 set)"
RENEWAL = "... renewal (new cert + key)"
AGAIN = "... same set again"
NRF_SET = "nrfcredstore write x3 (P-256 set)"


def _tool(name: str) -> str | None:
    here = BIN / name
    return str(here) if here.exists() else shutil.which(name)


def _wall(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    res = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=120)
    took = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{res.stderr.decode(errors='replace')}")
    return took


def _median(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    return statistics.median(fn() for _ in range(runs))


class PtySim:
    """`provision sim --dialect at-cmng --pty` in the background; its pty path."""

    def __init__(self, provision: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [provision, "sim", "--dialect", "at-cmng", "--pty", "--json"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("bench: the simulator did not start")
        self.port = json.loads(line)["port"]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-compile", action="store_true", help="leave provision's bytecode as it is")
    args = ap.parse_args()
    if not args.no_compile:
        import provision

        package = str(Path(provision.__file__).parent)
        subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)

    provision = _tool("provision")
    if provision is None:
        raise SystemExit("bench: `provision` is not on PATH (make bench sets it)")
    esptool = _tool("esptool")
    nrfcredstore = _tool("nrfcredstore")
    figures: dict[str, float | None] = {}

    with tempfile.TemporaryDirectory(prefix="bench-cli.") as tmp:
        work = Path(tmp)
        env_cwd = work

        def run(*argv: str) -> float:
            return _wall(list(argv), env_cwd)

        # Credentials made once, outside the timing: a client pair per renewal run.
        pairs = args.runs + 1
        setup = [["pki", "init-ca", "--out-dir", "ca", "--cn", "Bench CA", "--no-password"]]
        setup += [
            ["pki", "issue", "client", "--ca", "ca", "--out-dir", "dev", "--device-id", f"d{i}"]
            for i in range(pairs)
        ]
        for cmd in setup:
            res = subprocess.run([provision, *cmd], cwd=work, capture_output=True)
            if res.returncode != 0:
                raise SystemExit(f"bench: provision {' '.join(cmd)}: {res.stderr.decode()}")
        files = {
            "ROOT_CA_CERT": "ca/ca.crt",
            "CLIENT_CERT": "dev/d0.crt",
            "CLIENT_KEY": "dev/d0.key",
        }

        figures["provision --help"] = _median(args.runs, lambda: run(provision, "--help"))
        figures["provision device --help"] = _median(
            args.runs, lambda: run(provision, "device", "--help")
        )
        figures["esptool version"] = (
            _median(args.runs, lambda: run(esptool, "version")) if esptool else None
        )
        figures["nrfcredstore -h"] = (
            _median(args.runs, lambda: run(nrfcredstore, "-h")) if nrfcredstore else None
        )

        sim = PtySim(provision, work)
        try:
            at = ["--port", sim.port, "--dialect", "at-cmng"]

            def write(i: int) -> list[str]:
                return [
                    provision, "device", "write", *at, "--tag", "42",
                    "--root-ca", files["ROOT_CA_CERT"],
                    "--client-cert", f"dev/d{i}.crt", "--client-key", f"dev/d{i}.key",
                ]  # fmt: skip

            def first_write() -> float:
                run(provision, "device", "delete", *at, "--tag", "42")  # untimed
                return run(*write(0))

            figures[FRESH] = _median(args.runs, first_write)
            renewals = iter(range(1, pairs))
            figures[RENEWAL] = _median(args.runs, lambda: run(*write(next(renewals))))
            figures[AGAIN] = _median(args.runs, lambda: run(*write(pairs - 1)))

            def nrf_set() -> float:
                return sum(
                    run(
                        sys.executable,
                        "-c",
                        NRFCREDSTORE_ON_A_PTY,
                        sim.port,
                        "--cmd-type",
                        "at",
                        "write",
                        "43",
                        kind,
                        path,
                    )
                    for kind, path in files.items()
                )

            figures[NRF_SET] = _median(max(1, args.runs // 2), nrf_set) if nrfcredstore else None
        finally:
            sim.close()

    ratios = {
        "provision --help / esptool version": ("provision --help", "esptool version"),
        "provision --help / nrfcredstore -h": ("provision --help", "nrfcredstore -h"),
        "provision device --help / esptool version": (
            "provision device --help",
            "esptool version",
        ),
        "provision write / nrfcredstore write x3": (FRESH, NRF_SET),
        "provision renewal / nrfcredstore write x3": (RENEWAL, NRF_SET),
    }
    ratio_values = {
        name: (figures[a] / figures[b]) if figures[a] and figures[b] else None
        for name, (a, b) in ratios.items()
    }
    if args.json:
        print(
            json.dumps(
                {
                    "seconds": figures,
                    "ratios": ratio_values,
                    "runs": args.runs,
                    "compiled": not args.no_compile,
                }
            )
        )
        return
    compiled = "provision compiled" if not args.no_compile else "provision not compiled"
    print(f"median wall time of {args.runs} runs (cpus: {os.cpu_count()}, {compiled})")
    for name, value in figures.items():
        print(f"  {name:<38} {'-' if value is None else f'{value:6.3f} s'}")
    for name, value in ratio_values.items():
        print(f"  {name:<42} {'-' if value is None else f'{value:5.2f}'}")
    write_s = figures[FRESH] or 0.0
    ratio = ratio_values["provision write / nrfcredstore write x3"]
    met = write_s <= 0.5 and ratio is not None and ratio <= 1 / 3
    print(f"  goal: one-shot write <= 0.5 s and >= 3x nrfcredstore: {'met' if met else 'NOT met'}")
    help_ratio = ratio_values["provision --help / esptool version"]
    if help_ratio is not None:
        print(f"  goal: --help <= esptool version: {'met' if help_ratio <= 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
