"""Seeded randomized fault sessions over the simulated line (virtual clock, no sleeping).

Every session ends in success or a clear ProvisionError within its time bound, and the
device's flash then holds exactly the old set or exactly the new one (the new one after a
success). Power cuts at every received byte and every programmed flash byte of one transfer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from simkit import expected_after, flash_state, make_set, make_store, session, sim_transport

from provision.errors import LinkError, ProvisionError
from provision.sim.faults import FaultPlan

TIMEOUT = 0.5
RETRIES = 4
# HELLO: (retries+1) tries of one timeout; transfer: its own budget (NativeSession._transfer).
BOUND_S = (RETRIES + 1) * TIMEOUT + 2 * (RETRIES + 1) * TIMEOUT + 2.0

OLD = make_set(random.Random(100), (1, 2))
NEW = make_set(random.Random(200), (2, 3))
OLD_STATE = {s.key: s.data for s in OLD}
NEW_STATE = expected_after(OLD_STATE, NEW)


@dataclass
class Outcome:
    ok: bool
    error: ProvisionError | None
    seconds: float
    state: dict


def run(plan: FaultPlan, creds=NEW, old=OLD) -> Outcome:
    store = make_store(old)
    transport = sim_transport(store, plan)
    error = None
    try:
        session(transport, TIMEOUT, RETRIES).write(creds)
    except ProvisionError as err:  # anything else fails the test with its traceback
        error = err
    return Outcome(error is None, error, transport.now, flash_state(store))


def random_plan(seed: int) -> FaultPlan:
    r = random.Random(seed)
    return FaultPlan(
        flip=r.choice([0.0, 2e-4, 1e-3]),
        drop=r.choice([0.0, 2e-4, 1e-3]),
        dup=r.choice([0.0, 5e-4]),
        stall=r.choice([0.0, 0.0, 1e-4]),
        stall_s=r.choice([0.05, 0.3, 2.0]),
        cut_at=r.randint(1, 2500) if r.random() < 0.3 else None,
        flash_cut=r.randint(0, 1500) if r.random() < 0.15 else None,
        seed=seed,
    )


def check_sessions(seeds: range) -> dict[str, int]:
    counts = {"ok": 0, "error": 0}
    for seed in seeds:
        plan = random_plan(seed)
        out = run(plan)
        where = f"seed {seed}: {plan}"
        assert out.seconds <= BOUND_S, f"{where}: took {out.seconds:.2f} s (virtual)"
        if out.ok:
            assert out.state == NEW_STATE, where
            counts["ok"] += 1
        else:
            assert out.state in (OLD_STATE, NEW_STATE), where
            assert out.error.message and "\n" not in out.error.message, where
            counts["error"] += 1
    return counts


def test_one_thousand_seeded_fault_sessions() -> None:
    counts = check_sessions(range(1000))
    # Retransmission and restart work: most sessions get through moderate faults.
    assert counts["ok"] >= 850, counts


@pytest.mark.soak
def test_soak_fault_sessions() -> None:
    counts = check_sessions(range(1000, 21000))
    assert counts["ok"] >= 17000, counts


def test_clean_line_succeeds_without_retransmission() -> None:
    store = make_store(OLD)
    transport = sim_transport(store)
    s = session(transport)
    s.write(NEW)
    assert flash_state(store) == NEW_STATE
    assert transport.runner.power_cuts == 0


def _clean_rx_bytes(creds, old) -> int:
    store = make_store(old)
    transport = sim_transport(store)
    session(transport).write(creds)
    return transport.runner.rx_count


def test_power_cut_at_every_received_byte_of_one_transfer() -> None:
    small_old = make_set(random.Random(7), (1,), size=40)
    small_new = make_set(random.Random(8), (1,), size=40)
    old_state = {s.key: s.data for s in small_old}
    new_state = expected_after(old_state, small_new)
    total = _clean_rx_bytes(small_new, small_old)
    for n in range(1, total + 1):
        out = run(FaultPlan(cut_at=n), small_new, small_old)
        # The host rides out one reboot: it restarts the transfer and succeeds.
        assert out.ok, f"cut at byte {n}: {out.error}"
        assert out.state == new_state, n
        assert out.seconds <= BOUND_S, n


def test_power_cut_at_every_flash_byte_of_the_commit() -> None:
    small_old = make_set(random.Random(7), (1,), size=40)
    small_new = make_set(random.Random(9), (2,), size=40)
    old_state = {s.key: s.data for s in small_old}
    new_state = expected_after(old_state, small_new)
    probe = make_store(small_old)
    before = probe.flash.programmed
    probe.replace(new_state)
    total = probe.flash.programmed - before
    for n in range(total + 1):
        out = run(FaultPlan(flash_cut=n), small_new, small_old)
        assert out.ok, f"flash cut at byte {n}: {out.error}"
        assert out.state == new_state, n


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.97])
def test_device_that_stops_answering_gives_a_clear_error_in_time(fraction: float) -> None:
    # Silent before COMMIT's last byte: nothing may be applied.
    after = 1 + int(fraction * (_clean_rx_bytes(NEW, OLD) - 20))
    out = run(FaultPlan(silent_after=after))
    assert isinstance(out.error, LinkError)
    assert out.state == OLD_STATE
    assert out.seconds <= BOUND_S
    assert "answer" in out.error.message or "did not finish" in out.error.message


def test_garbage_before_the_session_is_harmless() -> None:
    store = make_store(OLD)
    transport = sim_transport(store)
    transport.write(bytes(random.Random(3).randbytes(700)).replace(b"\x00", b"\x01"))
    session(transport).write(NEW)
    assert flash_state(store) == NEW_STATE


def test_receive_buffer_overrun_is_recovered_by_retransmission() -> None:
    from provision.sim.profile import PROFILES
    from provision.sim.serve import SimContext, SimRunner, SimTransport
    from provision.sim.store import SlotStore, open_store

    # A slow device (5 ms per frame) with a 600-byte UART buffer: a full window overruns it.
    slow = PROFILES["default"].with_options(frame_us=5000.0, rx_buffer=600)
    store: SlotStore = open_store(slow)
    store.replace(OLD_STATE)
    runner = SimRunner("native", SimContext("native", store, slow), baud=1_000_000)
    transport = SimTransport(runner)
    big = make_set(random.Random(11), (4, 5), size=3000)
    session(transport).write(big)
    assert runner.overrun_bytes > 0
    assert flash_state(store) == expected_after(OLD_STATE, big)
