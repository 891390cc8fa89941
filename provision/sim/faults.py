"""Seeded fault injection for the simulated serial line and device.

Line faults apply per byte in both directions with the given probabilities: bit flip, drop,
duplicate, stall (the line goes quiet for `stall_s` before the byte). Device faults:
`cut_at` — power cut when the device has received that many bytes (RAM lost, flash kept,
the device reboots); `flash_cut` — power cut after that many flash bytes programmed;
`silent_after` — the device stops answering for good after that many bytes (a hung board).
The same seed gives the same faults.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from provision.errors import InputError


@dataclass(frozen=True)
class FaultPlan:
    flip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    stall: float = 0.0
    stall_s: float = 0.5
    cut_at: int | None = None
    flash_cut: int | None = None
    silent_after: int | None = None
    seed: int = 0

    @property
    def line_rate(self) -> float:
        return self.flip + self.drop + self.dup + self.stall

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> FaultPlan:
        """Build from string options (URL query, CLI); unknown keys are ignored here."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in options:
                continue
            raw = options[f.name]
            try:
                value: float = float(raw) if f.name in _FLOATS else int(raw)
            except ValueError:
                raise InputError(f"fault option {f.name}={raw!r} is not a number") from None
            if f.name in _PROBABILITIES and not 0.0 <= value < 1.0:
                raise InputError(f"fault option {f.name} must be a probability in [0, 1)")
            kwargs[f.name] = value
        return cls(**kwargs)


_PROBABILITIES = {"flip", "drop", "dup", "stall"}
_FLOATS = _PROBABILITIES | {"stall_s"}
FAULT_KEYS = frozenset(f.name for f in fields(FaultPlan))


class LineFaults:
    """Applies a FaultPlan's line faults to a byte string, drawing positions geometrically
    so a low fault rate costs almost nothing per byte."""

    def __init__(self, plan: FaultPlan, rng: random.Random) -> None:
        self.plan = plan
        self.rng = rng
        self._gap = self._draw_gap()

    def _draw_gap(self) -> int:
        p = self.plan.line_rate
        if p <= 0:
            return 1 << 62
        u = self.rng.random()
        return int(math.log(1.0 - u) / math.log(1.0 - p))

    def apply(self, data: bytes) -> list[tuple[float, bytes]]:
        """Return pieces (delay before the piece in seconds, bytes) with faults applied."""
        pieces: list[tuple[float, bytes]] = []
        out = bytearray()
        delay = 0.0
        pos = 0
        plan = self.plan
        while self._gap < len(data) - pos:
            out += data[pos : pos + self._gap]
            pos += self._gap
            b = data[pos]
            pos += 1
            pick = self.rng.random() * plan.line_rate
            if pick < plan.flip:
                out.append(b ^ (1 << self.rng.randrange(8)))
            elif pick < plan.flip + plan.drop:
                pass
            elif pick < plan.flip + plan.drop + plan.dup:
                out += bytes((b, b))
            else:
                pieces.append((delay, bytes(out)))
                out = bytearray((b,))
                delay = plan.stall_s
            self._gap = self._draw_gap()
        self._gap -= len(data) - pos
        out += data[pos:]
        pieces.append((delay, bytes(out)))
        return [(d, p) for d, p in pieces if p or d]
