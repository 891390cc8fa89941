"""Seeded fault sessions for every dialect: bit flips, drops, duplicates, stalls, power cuts
and a device that goes silent, on the simulator's virtual clock (no sleeping). Each session
ends within its bound, its exit tells the truth about what the device holds, and the
dialect's stated guarantee holds (faultkit.check_truth). 300 sessions per dialect in the
default run; `make soak` runs 20,000 per dialect."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from faultkit import check_truth, run_session

DIALECTS = ["native", "at-cmng", "at-shell", "zephyr-shell"]
TIMEOUT, RETRIES = 0.3, 2
# Virtual seconds a session may take. Each command or window waits at most (1 + RETRIES)
# timeouts, a stall adds at most 2 s per stalled byte, and a session has a few dozen
# commands: the bound is generous against a hang (which runs to the transfer budget or
# forever), not a speed goal.
BOUND_S = {"native": 30.0, "at-cmng": 60.0, "at-shell": 60.0, "zephyr-shell": 90.0, "esp32": 120.0}
# Fraction of sessions that must end with the new set (observed: see the commit message).
OK_FLOOR = {"native": 0.8, "at-cmng": 0.45, "at-shell": 0.25, "zephyr-shell": 0.25, "esp32": 0.025}
# Bytes one clean write sends, rounded up: where a power cut can fall.
CUT_RANGE = 2600


def random_faults(seed: int) -> dict[str, object]:
    r = random.Random(seed)
    return {
        "flip": r.choice([0.0, 2e-4, 1e-3]),
        "drop": r.choice([0.0, 2e-4, 1e-3]),
        "dup": r.choice([0.0, 5e-4]),
        "stall": r.choice([0.0, 0.0, 1e-4]),
        "stall_s": r.choice([0.05, 0.3, 2.0]),
        "cut_at": r.randint(1, CUT_RANGE) if r.random() < 0.3 else None,
        "silent_after": r.randint(1, CUT_RANGE) if r.random() < 0.05 else None,
        "seed": seed,
    }


def soak(
    dialect: str,
    folder,
    seeds: range,
    *,
    pipeline: bool = False,
    device: dict | None = None,
    renewal: bool = False,
) -> Counter[str]:
    ends: Counter[str] = Counter()
    for seed in seeds:
        out = run_session(
            dialect,
            folder,
            {**random_faults(seed), **(device or {})},
            timeout=TIMEOUT,
            retries=RETRIES,
            pipeline=pipeline,
            renewal=renewal,
        )
        ends[check_truth(out, BOUND_S[dialect])] += 1
        ends["max_s"] = max(ends["max_s"], int(out.seconds + 1))
    return ends


@pytest.mark.parametrize("dialect", DIALECTS)
def test_three_hundred_seeded_fault_sessions(dialect, tmp_path) -> None:
    ends = soak(dialect, tmp_path, range(300))
    print(dialect, dict(ends))
    # Retries ride out moderate faults. A text dialect has no checksum and resends a whole
    # credential per garbled try, so at 1e-3 flips and drops many sessions end in a reported
    # failure; the floors guard against regressions, the assertions above against lies.
    assert ends["ok"] >= OK_FLOOR[dialect] * 300, ends


@pytest.mark.parametrize("dialect", DIALECTS)
def test_seeded_renewals_keep_the_shared_root_and_never_mix(dialect, tmp_path) -> None:
    """The device holds a set with NEW's root_ca (a certificate and key renewed under the
    same CA): a text dialect leaves the root in place and sends only what changed, and a
    failure still leaves the old set, the new one, or part of the new one."""
    ends = soak(dialect, tmp_path, range(5000, 5300), renewal=True)
    print(dialect, dict(ends))
    assert ends["ok"] >= OK_FLOOR[dialect] * 300, ends


def test_three_hundred_seeded_pipelined_native_sessions(tmp_path) -> None:
    """Opened as `device write` opens it: the lean transfer goes out before HELLO's answer,
    so faults hit HELLO, its answer and the first chunk together."""
    ends = soak("native", tmp_path, range(300), pipeline=True)
    assert ends["ok"] >= OK_FLOOR["native"] * 300, ends
    # A device without LEAN refuses the lean start; the classic transfer that follows
    # holds to the same truth (seed 949 found a budget run out after a COMMIT went out
    # reported as a plain timeout over the new set).
    ends = soak("native", tmp_path, range(700, 1000), pipeline=True, device={"lean": 0})
    assert ends["ok"] >= OK_FLOOR["native"] * 300, ends


@pytest.mark.soak
@pytest.mark.parametrize("dialect", DIALECTS)
def test_soak_twenty_thousand_seeded_fault_sessions(dialect, tmp_path) -> None:
    ends = soak(dialect, tmp_path, range(1000, 21000))
    assert ends["ok"] >= OK_FLOOR[dialect] * 20000, ends


@pytest.mark.soak
@pytest.mark.parametrize("dialect", DIALECTS)
def test_soak_five_thousand_seeded_renewals(dialect, tmp_path) -> None:
    ends = soak(dialect, tmp_path, range(30000, 35000), renewal=True)
    assert ends["ok"] >= OK_FLOOR[dialect] * 5000, ends


# The esp32 dialect drives esptool against a simulated ROM loader and flashes a whole
# partition per write: since the simulator takes whole SLIP frames, some 30 ms of wall time
# a session (300 in ~10 s), as many as the other dialects. esptool's connect and ~9 KB of
# flashing rarely get through these fault rates (13 of 300 did): the truth of each failure
# is what is checked; the successes keep the success path covered.
ESP32_SESSIONS, ESP32_SOAK_SESSIONS = 300, 20_000


@pytest.fixture
def esp32_tag_42(monkeypatch):
    monkeypatch.setenv("PROVISION_ESP32_SEC_TAG", "42")  # the sets' tag, for list/verify


def test_esp32_seeded_fault_sessions(tmp_path, esp32_tag_42) -> None:
    ends = soak("esp32", tmp_path, range(ESP32_SESSIONS))
    print("esp32", dict(ends))
    assert ends["ok"] >= OK_FLOOR["esp32"] * ESP32_SESSIONS, ends


@pytest.mark.soak
def test_soak_esp32_seeded_fault_sessions(tmp_path, esp32_tag_42) -> None:
    ends = soak("esp32", tmp_path, range(1000, 1000 + ESP32_SOAK_SESSIONS))
    assert ends["ok"] >= OK_FLOOR["esp32"] * ESP32_SOAK_SESSIONS, ends
