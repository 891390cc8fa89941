"""bench/mcu_cycles.py: a QEMU block trace priced by the Cortex-M0 and M4 timing tables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import mcu_cycles

# A loop block run (its BNE taken); icount's budget then has QEMU translate the loop's address
# again as a one-instruction block and the rest as another (BNE taken); the whole loop block
# again (BNE not taken); a return.
LOG = """\
----------------
IN: loop
0x00000100:  6808       ldr      r0, [r1]
0x00000102:  6849       ldr      r1, [r1, #4]
0x00000104:  1c40       adds     r0, r0, #1
0x00000106:  d1fb       bne      #0x100

Trace 0: 0x7f0000000100 [00000000/00000100/00000000/ff000000] loop
----------------
IN: loop
0x00000100:  6808       ldr      r0, [r1]

Trace 0: 0x7f0000000300 [00000000/00000100/00000000/ff000000] loop
----------------
IN: loop
0x00000102:  6849       ldr      r1, [r1, #4]
0x00000104:  1c40       adds     r0, r0, #1
0x00000106:  d1fb       bne      #0x100

Trace 0: 0x7f0000000400 [00000000/00000102/00000000/ff000000] loop
Trace 0: 0x7f0000000100 [00000000/00000100/00000000/ff000000] loop
----------------
IN: leave
0x00000108:  4770       bx       lr

Trace 0: 0x7f0000000200 [00000000/00000108/00000000/ff000000] leave
"""


def test_cortex_m0_prices_loads_taken_branches_and_returns() -> None:
    mix = mcu_cycles.price_log(LOG.splitlines(True), "m0")
    # Loop 2+2+1 and BNE taken 3; the lone LDR 2; the rest 2+1 and BNE taken 3; loop 5 and
    # BNE not taken 1; BX 3.
    assert mix.instructions == 13
    assert mix.cycles(0) == 8 + 2 + 6 + 6 + 3
    assert mix.classes["ldst"] == 6 and mix.classes["bcond"] == 3


@pytest.mark.parametrize(("refill", "cycles"), [(1, 20), (2, 23), (3, 26)])
def test_cortex_m4_pipelines_neighbouring_loads_and_pays_refills(refill, cycles) -> None:
    mix = mcu_cycles.price_log(LOG.splitlines(True), "m4")
    # Loop 2+1+1 (the second LDR pipelines) and BNE 1+P; the lone LDR 2; the rest 2+1 and
    # BNE 1+P; loop 4 and BNE not taken 1; BX 1+P.
    assert mix.cycles(refill) == 17 + 3 * refill == cycles
    assert mix.refills == 3
