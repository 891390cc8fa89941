"""The firmware stub's own C tests (vectors from the Python side, power cut at every flash
byte of the store), its footprint on the Cortex-M3 board, and a bounded fuzz run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from stub_support import ROOT, libfuzzer_available, make, require


def test_c_test_program_passes_the_golden_vectors() -> None:
    require("cc", "make")
    result = make("test")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    summary = re.search(
        r"(\d+) checks, (\d+) failures \((\d+) frame vectors, (\d+) golden bundles\)", out
    )
    assert summary, out[-3000:]
    checks, failures, frames, golden = map(int, summary.groups())
    assert failures == 0
    assert frames >= 20  # tests/vectors/frames.jsonl was replayed
    assert golden >= 5  # and tests/vectors/bundles/*.json
    assert checks > 1000
    # Every flash byte of two commits was cut, and each cut kept the previous set.
    assert len(re.findall(r"store \w+: \d+ cut points, all kept the previous set", out)) == 2


def test_posix_stub_builds_warning_free() -> None:
    require("cc", "make")
    result = make("posix")
    assert result.returncode == 0, result.stderr[-3000:]


def test_footprint_within_goals() -> None:
    require("make", "arm-none-eabi-gcc")
    result = make("mps2")
    assert result.returncode == 0, result.stderr[-3000:]
    bench = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_stub.py"), "--check"],
        capture_output=True,
        text=True,
    )
    print(bench.stdout)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    flash = int(re.search(r"flash\s+(\d+) B", bench.stdout).group(1))
    ram = int(re.search(r"RAM\s+(\d+) B", bench.stdout).group(1))
    assert 0 < flash <= 12 * 1024 and 0 < ram <= 6 * 1024


@pytest.mark.fuzz
def test_bounded_fuzz_run_finds_no_crash() -> None:
    require("clang", "make")
    if not libfuzzer_available():
        require("libclang-rt-14-dev")  # skips (or fails in CI) with the package to install
    result = make("fuzz", FUZZ_SECONDS="10")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    execs = int(re.search(r"stat::number_of_executed_units:\s+(\d+)", out).group(1))
    assert execs > 1000
