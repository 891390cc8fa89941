"""Cycles from a QEMU execution trace, by the Cortex-M timing tables (for bench_mcu_crypto.py).

QEMU counts instructions; a Cortex-M takes a known number of cycles for most of them. With
`-d in_asm,exec,nochain` QEMU logs each translated block's instructions once ("IN:") and every
execution of a block ("Trace"); the next block's address tells whether a block's final
conditional branch was taken. Each instruction is priced from:

  Cortex-M0 TRM (ARM DDI 0432C) Table 3-1: data processing 1, MULS 1 (the fast multiplier; a
  chip with the small one takes 32), LDR/STR 2, LDM/STM/PUSH/POP 1+N (POP with PC 4+N),
  B/BX/BLX 3, BL 4, B<cond> 3 taken and 1 not.
  Cortex-M4 TRM (ARM DDI 0439B) Table 3-1: data processing, MUL and the long multiplies
  (UMULL, UMLAL, UMAAL) 1, MLA/MLS 2, LDR/STR 2 but 1 right after another single load or
  store (their address and data phases pipeline), LDRD/STRD 3, LDM/STM/PUSH/POP 1+N, branches
  1+P taken and 1 not, P (pipeline refill) 1 to 3, UDIV/SDIV 2-12 (taken as 7).

Memory is taken as zero-wait-state (on-chip SRAM; code from the nRF52840's cache or the nRF51's
16 MHz flash): wait states would add to these figures.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

_INSN = re.compile(r"^0x([0-9a-f]+):\s+((?:[0-9a-f]{4} ?)+)\s+(\S+)\s*(.*)$")
_TRACE = re.compile(r"^Trace \d+: 0x([0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/")
_COND = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt",
         "le")  # fmt: skip


@dataclass
class Mix:
    """Instructions by class, and the cycle total for each branch-refill penalty P."""

    instructions: int = 0
    classes: Counter[str] = field(default_factory=Counter)
    cycles_fixed: float = 0.0  # everything but the refills of taken branches
    refills: int = 0  # taken branches (each 1+P on the M4; P fixed at 2 on the M0)
    console: str = ""  # what the program wrote on semihosting (QEMU's stderr)

    def cycles(self, refill: float) -> float:
        return self.cycles_fixed + self.refills * refill

    def cpi(self, refill: float) -> float:
        return self.cycles(refill) / self.instructions


def _regs(operands: str) -> int:
    inside = operands[operands.find("{") + 1 : operands.find("}")]
    n = 0
    for part in inside.split(","):
        a, _, b = part.strip().partition("-")
        n += 1 if not b else int(b.strip()[1:]) - int(a.strip()[1:]) + 1
    return n


def _classify(mnemonic: str, operands: str) -> tuple[str, int]:
    """(class, register count for multiple transfers)."""
    m = mnemonic.split(".")[0]
    if m in ("push", "pop", "stm", "stmia", "stmdb", "ldm", "ldmia", "ldmdb"):
        kind = "ldm" if m.startswith(("pop", "ldm")) else "stm"
        if kind == "ldm" and "pc" in operands:
            kind = "pop_pc"
        return kind, _regs(operands)
    if m in ("ldrd", "strd"):
        return "ldrd", 2
    if m.startswith(("ldr", "str", "ldrex", "strex")):
        if m.startswith("ldr") and operands.startswith("pc"):
            return "branch", 0
        return "ldst", 0
    if m in ("bl",):
        return "bl", 0
    if m in ("b", "bx", "blx"):
        return "branch", 0
    if m in ("cbz", "cbnz") or (m.startswith("b") and m[1:] in _COND):
        return "bcond", 0
    if m in ("tbb", "tbh"):
        return "table", 0
    if m in ("umull", "smull", "umlal", "smlal", "umaal", "mul", "muls"):
        return "mul", 0
    if m in ("mla", "mls"):
        return "mla", 0
    if m in ("udiv", "sdiv"):
        return "div", 0
    if m.startswith("it"):
        return "it", 0
    if m in ("mov", "add") and operands.startswith("pc"):
        return "branch", 0
    return "alu", 0


def analyse(cmd: list[str], core: str) -> Mix:
    """Run QEMU with its block log on a pipe and price every executed instruction."""
    with tempfile.TemporaryFile("w+") as console:
        proc = subprocess.Popen(
            [*cmd, "-d", "in_asm,exec,nochain", "-D", "/dev/stdout"],
            stdout=subprocess.PIPE, stderr=console, text=True, bufsize=1 << 20,
        )  # fmt: skip
        assert proc.stdout
        mix = price_log(proc.stdout, core)
        proc.wait()
        console.seek(0)
        mix.console = console.read()
    return mix


def price_log(log: Iterable[str], core: str) -> Mix:
    """Price a QEMU `-d in_asm,exec,nochain` log for `core` ("m0" or "m4")."""
    mix = Mix()
    m0 = core == "m0"
    # Keyed by QEMU's host address of the translated block: a block at one guest address may
    # be translated again shorter (icount's instruction budget), and both stay in use.
    blocks: dict[int, list[tuple[str, int, int, int]]] = {}  # (class, regs, address, size)
    pending: list[tuple[str, int, int, int]] = []
    last: list[tuple[str, int, int, int]] | None = None
    for line in log:
        if line.startswith("0x"):
            got = _INSN.match(line)
            if got:
                size = 2 * len(got.group(2).split())
                kind, regs = _classify(got.group(3), got.group(4))
                pending.append((kind, regs, int(got.group(1), 16), size))
            continue
        if line.startswith("Trace"):
            got = _TRACE.match(line)
            if not got:
                continue
            host, pc = int(got.group(1), 16), int(got.group(2), 16)
            if pending and pending[0][2] == pc:
                blocks[host] = pending
            pending = []
            if last is not None:
                _price_end(mix, last, pc, m0)
            last = blocks.get(host)
            if last is not None:
                _price(mix, last, m0)
            continue
        if line.startswith(("IN:", "----")):
            pending = []
    return mix


def _price(mix: Mix, block: list[tuple[str, int, int, int]], m0: bool) -> None:
    prev_single = False
    for kind, regs, _addr, _size in block:
        mix.instructions += 1
        mix.classes[kind] += 1
        if kind == "ldst":
            mix.cycles_fixed += 2 if m0 or not prev_single else 1
        elif kind in ("ldm", "stm"):
            mix.cycles_fixed += 1 + regs
        elif kind == "pop_pc":
            mix.cycles_fixed += (4 + regs - 1) if m0 else (1 + regs)
            mix.refills += 0 if m0 else 1
        elif kind == "ldrd":
            mix.cycles_fixed += 3
        elif kind == "bl":
            mix.cycles_fixed += 4 if m0 else 1
            mix.refills += 0 if m0 else 1
        elif kind == "branch":
            mix.cycles_fixed += 3 if m0 else 1
            mix.refills += 0 if m0 else 1
        elif kind == "table":
            mix.cycles_fixed += 2
            mix.refills += 1
        elif kind == "mla":
            mix.cycles_fixed += 2
        elif kind == "div":
            mix.cycles_fixed += 7
        elif kind == "bcond":
            pass  # priced once the next block shows whether it was taken (_price_end)
        else:
            mix.cycles_fixed += 1
        prev_single = kind == "ldst"


def _price_end(mix: Mix, block: list[tuple[str, int, int, int]], next_pc: int, m0: bool) -> None:
    for kind, _regs, addr, size in block:
        if kind != "bcond":
            continue
        taken = addr == block[-1][2] and next_pc != addr + size
        mix.cycles_fixed += 3 if m0 and taken else 1
        if taken and not m0:
            mix.refills += 1
