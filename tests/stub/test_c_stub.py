"""The firmware stub's own C tests (vectors from the Python side, power cut at every flash
byte of the store), its footprint on the Cortex-M3 board, and a bounded fuzz run."""

from __future__ import annotations

import ast
import operator
import re
import subprocess
import sys
from pathlib import Path

import pytest
from stub_support import ROOT, STUB, libfuzzer_available, make, require


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
    # Every flash byte of two commits was cut, and each cut kept the previous set, with
    # byte-programmable flash and with 8- and 16-byte write blocks.
    cuts = re.findall(
        r"store (\w+) \(write block (\d+)\): \d+ cut points, all kept the previous", out
    )
    assert sorted(cuts) == sorted((c, b) for c in ("apply", "delete") for b in ("1", "8", "16"))


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.LShift: operator.lshift,
}


def c_int(expr: str) -> int:
    """A C integer constant expression of literals, + - * << and parentheses."""

    def value(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return int(_OPS[type(node.op)](value(node.left), value(node.right)))
        raise ValueError(f"not a constant expression: {expr}")

    return value(ast.parse(re.sub(r"(?<=[0-9A-Fa-f])[uU]\b", "", expr), mode="eval").body)


def c_defines(header: Path) -> dict[str, int | bytes]:
    """#define NAME value lines of a C header: integer expressions and string literals."""
    found: dict[str, int | bytes] = {}
    text = header.read_text()
    for name, value in re.findall(r"^#define[ \t]+(\w+)[ \t]+(.+?)[ \t]*(?:/\*.*)?$", text, re.M):
        found[name] = value.strip('"').encode() if value.startswith('"') else c_int(value)
    return found


def test_bundle_h_limits_match_the_python_format() -> None:
    """The C reader's limits and wire numbers are the Python format's (provision/bundle)."""
    from provision.bundle import format as fmt
    from provision.bundle import model

    python = {
        "BUNDLE_MAGIC": fmt.MAGIC,
        "BUNDLE_VERSION": fmt.FORMAT_VERSION,
        "BUNDLE_FLAG_SIGNED": fmt.FLAG_SIGNED,
        "BUNDLE_MAX_RECORDS": fmt.MAX_RECORDS,
        "BUNDLE_MAX_PAYLOAD": fmt.MAX_PAYLOAD,
        "BUNDLE_MAX_DEVICE_ID": fmt.MAX_DEVICE_ID,
        "BUNDLE_MAX_SEC_TAG": model.MAX_SEC_TAG,
        "BUNDLE_RECORD_HEAD": fmt.RECORD_OVERHEAD - 4,  # without the record's crc32
        "BUNDLE_SLOT_TYPES": len(model.SlotType),
        "BUNDLE_ENCODINGS": len(model.Encoding),
        "BUNDLE_SLOT_ROOT_CA": int(model.SlotType.ROOT_CA),
        "BUNDLE_SLOT_CLIENT_KEY": int(model.SlotType.CLIENT_KEY),
        "BUNDLE_ENC_RAW": int(model.Encoding.RAW),
        "BUNDLE_REC_ENCRYPTED": int(model.SlotFlags.ENCRYPTED),
    }
    c = c_defines(STUB / "include" / "bundle.h")
    # A limit added on one side only fails here until the other side has it.
    assert {k for k in c if k.startswith("BUNDLE_") and k != "PROVISION_BUNDLE_H"} == set(python)
    assert {k: c[k] for k in python} == python
    # The store and protocol limits stay inside the format's.
    proto = c_defines(STUB / "include" / "proto.h")
    assert proto["PROTO_MAX_SLOT_SIZE"] <= fmt.MAX_PAYLOAD
    assert c_defines(STUB / "include" / "store.h")["STORE_MAX_SLOTS"] <= fmt.MAX_RECORDS


def test_posix_stub_builds_warning_free() -> None:
    require("cc", "make")
    result = make("posix")
    assert result.returncode == 0, result.stderr[-3000:]


def test_footprint_within_goals() -> None:
    """Every board (mps2-an385, the nRF51 micro:bit for QEMU and for a real board, the
    nRF52840) fits 12 KB of flash and 6 KB of RAM."""
    require("make", "arm-none-eabi-gcc")
    bench = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_stub.py"), "--check"],
        capture_output=True,
        text=True,
    )
    print(bench.stdout)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    boards = re.findall(r"footprint, ([\w-]+) ", bench.stdout)
    assert boards == ["mps2", "microbit", "microbit-board", "nrf52840"]
    flash = [int(n) for n in re.findall(r"flash\s+(\d+) B", bench.stdout)]
    ram = [int(n) for n in re.findall(r"RAM\s+(\d+) B", bench.stdout)]
    assert len(flash) == len(ram) == len(boards)
    assert all(0 < f <= 12 * 1024 for f in flash) and all(0 < r <= 6 * 1024 for r in ram)


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
