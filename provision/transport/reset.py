"""DTR/RTS reset sequences around a session, under esptool's names (`--before`/`--after`).

Development boards with a USB-serial bridge commonly wire RTS to the chip's reset (EN) and DTR
to a boot-mode pin (IO0 on ESP32 boards; nothing on most nRF91 and Zephyr boards). A line is
"asserted" when pyserial's `port.rts`/`port.dtr` is True, which drives the pin low. The
sequences and delays are those of esptool 5 (esp_pylib/serial_reset.py, `hard_reset` and
`classic_bootloader_reset`):

  hard-reset     RTS asserted 0.1 s, released: the chip restarts and runs its firmware.
  default-reset  esptool's classic bootloader entry: DTR released, RTS asserted, 0.1 s, DTR
                 asserted, RTS released, 0.05 s, DTR released. An ESP32 then waits in its
                 ROM loader; only useful for a firmware that provisions from there.
  no-reset       the lines are left as the OS set them when the port opened (our default:
                 a running firmware answers without a reset).

Sequences are data (sans-IO); `apply` drives any object with `dtr`/`rts` attributes, and
transport/serial.py `reset_lines` plays one on a serial port.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Step:
    line: str  # "dtr", "rts" or "wait"
    value: float  # 1.0 asserted / 0.0 released for a line; seconds for "wait"


def _seq(*steps: tuple[str, float]) -> tuple[Step, ...]:
    return tuple(Step(line, value) for line, value in steps)


BEFORE: dict[str, tuple[Step, ...]] = {
    "no-reset": (),
    "hard-reset": _seq(("rts", 1), ("wait", 0.1), ("rts", 0)),
    "default-reset": _seq(
        ("dtr", 0), ("rts", 1), ("wait", 0.1), ("dtr", 1), ("rts", 0), ("wait", 0.05), ("dtr", 0)
    ),
}
AFTER: dict[str, tuple[Step, ...]] = {
    "no-reset": (),
    "hard-reset": BEFORE["hard-reset"],
}


class ModemLines(Protocol):
    dtr: bool
    rts: bool


def apply(
    port: ModemLines, steps: tuple[Step, ...], sleep: Callable[[float], None] = time.sleep
) -> None:
    for step in steps:
        if step.line == "wait":
            sleep(step.value)
        else:
            setattr(port, step.line, bool(step.value))
            if step.line == "rts":
                # Some Windows USB-CDC drivers send the line state only on a DTR write
                # (esptool re-writes DTR after every RTS change for the same reason).
                port.dtr = port.dtr


def is_serial_device(url: str) -> bool:
    """True for a port with modem-control lines (a device path or COMn), not a sim://,
    socket:// or rfc2217:// URL."""
    return "://" not in url
