"""A power cut at every byte the device receives during one write, on the dialects without
an atomic commit: every outcome is the new set after a success, or an error that says what
the device holds (its old set, the whole new set, or each slot new, old or missing), and the
device never holds old and new slots together (docs/dialects.md, "What a cut-short write
leaves"). No retries: each cut ends the session where it struck."""

from __future__ import annotations

from collections import Counter

import pytest
from faultkit import check_truth, run_session

# Virtual seconds: one session of a few dozen commands, each at most one 0.3 s timeout.
BOUND_S = 30.0


@pytest.mark.parametrize("dialect", ["at-cmng", "zephyr-shell"])
def test_power_cut_at_every_received_byte_of_one_write(dialect, tmp_path) -> None:
    total = run_session(dialect, tmp_path, {}, retries=0).received
    ends: Counter[str] = Counter()
    for n in range(1, total + 1):
        out = run_session(dialect, tmp_path, {"cut_at": n}, retries=0)
        ends[check_truth(out, BOUND_S)] += 1
    # The cuts fell in every phase: before any change, between deletes and writes, after.
    assert ends["old"] and ends["partial"] and ends["new"] + ends["ok"], ends
