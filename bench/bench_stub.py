"""Footprint of the firmware stub per board (issues 4 and 15), from arm-none-eabi-size.

Flash = code and constants (.text, .ARM.exidx) plus the initial values of .data.
RAM   = .data + .bss + the reserved stack. The credential storage area is not in either:
on mps2-an385 it is a host file reached by semihosting; on the nRF5 it is flash pages
outside the image (the linker script's CRED region).

Boards: mps2 (Cortex-M3, QEMU), microbit (nRF51822 Cortex-M0, the QEMU build with
semihosting), microbit-board (the .hex for a real micro:bit, no semihosting), nrf52840
(Cortex-M4, compiled only). Goals: flash <= 12 KB, RAM <= 6 KB on each. Prints figures and
measured/limit ratios; exits 1 if a goal is missed and --check is given.

    .venv/bin/python bench/bench_stub.py [--board NAME ...] [--elf FILE] [--check]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# board -> (make target, ELF)
BOARDS = {
    "mps2": ("mps2", "mps2/fw.elf"),
    "microbit": ("microbit", "microbit/fw.elf"),
    "microbit-board": ("microbit-hex", "microbit-board/fw.elf"),
    "nrf52840": ("nrf52840", "nrf52840/fw.elf"),
}
BUILD = ROOT / "firmware_stub" / "build"
FLASH_LIMIT = 12 * 1024
RAM_LIMIT = 6 * 1024
FLASH_SECTIONS = (".text", ".ARM.exidx", ".rodata", ".isr_vector")
RAM_SECTIONS = (".data", ".bss", ".stack")


def sections(size_tool: str, elf: Path) -> dict[str, int]:
    out = subprocess.run(
        [size_tool, "-A", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    found: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


def largest_symbols(nm_tool: str, elf: Path, kinds: str, count: int) -> list[tuple[int, str]]:
    """The biggest symbols of the given nm types (e.g. "tT" code, "bBdD" data)."""
    if not shutil.which(nm_tool):
        return []
    out = subprocess.run(
        [nm_tool, "--size-sort", "-S", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in kinds:
            rows.append((int(parts[1], 16), parts[3]))
    return sorted(rows, reverse=True)[:count]


def report(size_tool: str, elf: Path, label: str) -> bool:
    """Print one board's figures; True if both goals are met."""
    found = sections(size_tool, elf)
    flash = sum(found.get(s, 0) for s in FLASH_SECTIONS) + found.get(".data", 0)
    ram = sum(found.get(s, 0) for s in RAM_SECTIONS)
    stack = found.get(".stack", 0)
    shown = elf.relative_to(ROOT) if elf.is_relative_to(ROOT) else elf
    print(f"firmware stub footprint, {label} ({shown})")
    print(
        f"  flash {flash:6d} B  limit {FLASH_LIMIT} B  ratio {flash / FLASH_LIMIT:.2f}"
        f"  (.text {found.get('.text', 0)}, .data init {found.get('.data', 0)})"
    )
    print(
        f"  RAM   {ram:6d} B  limit {RAM_LIMIT} B  ratio {ram / RAM_LIMIT:.2f}"
        f"  (.data {found.get('.data', 0)}, .bss {found.get('.bss', 0)}, stack {stack})"
    )
    nm = size_tool.replace("size", "nm")
    code = largest_symbols(nm, elf, "tT", 5)
    data = largest_symbols(nm, elf, "bBdD", 5)
    if code:
        print("  largest code: " + ", ".join(f"{name} {size}" for size, name in code))
    if data:
        print("  largest RAM:  " + ", ".join(f"{name} {size}" for size, name in data))
    ok = flash <= FLASH_LIMIT and ram <= RAM_LIMIT
    print(f"  goals {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", choices=sorted(BOARDS), help="default: all")
    parser.add_argument("--elf", type=Path, help="measure this ELF instead of the boards")
    parser.add_argument("--size", default="arm-none-eabi-size")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    args = parser.parse_args()

    if not shutil.which(args.size):
        print(
            f"bench_stub: {args.size} not found; install gcc-arm-none-eabi and "
            "libnewlib-arm-none-eabi (apt) to measure the footprint"
        )
        return 1 if args.check else 0
    if args.elf:
        ok = report(args.size, args.elf, args.elf.parent.name)
    else:
        ok = True
        for board in args.board or BOARDS:
            target, elf = BOARDS[board]
            subprocess.run(["make", "-s", "-C", str(ROOT / "firmware_stub"), target], check=True)
            ok &= report(args.size, BUILD / elf, board)
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
