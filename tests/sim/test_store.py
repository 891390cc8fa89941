"""SlotStore: atomic A/B commits, persistence in a file, limits, power cuts at every byte."""

from __future__ import annotations

import contextlib

import pytest

from provision.bundle.model import SlotType
from provision.sim.profile import PROFILES
from provision.sim.store import PowerCut, StoreFull, open_store

SMALL = PROFILES["small"]
OLD = {(1, SlotType.ROOT_CA): b"old-root" * 20, (1, SlotType.CLIENT_KEY): b"old-key" * 10}
NEW = {(2, SlotType.ROOT_CA): b"new-root" * 30, (1, SlotType.CLIENT_KEY): None}


def applied(old: dict, changes: dict) -> dict:
    out = dict(old)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def test_commit_persists_in_the_flash_file(tmp_path) -> None:
    path = tmp_path / "dev.flash"
    store = open_store(SMALL, path)
    store.commit(OLD)
    store.commit(NEW)
    reopened = open_store(SMALL, path)
    assert reopened.entries() == applied(OLD, NEW)
    assert path.stat().st_size == 2 * SMALL.bank_size


def test_limits_refuse_and_change_nothing() -> None:
    store = open_store(SMALL)
    store.commit(OLD)
    with pytest.raises(StoreFull, match="slot limit"):
        store.commit({(3, SlotType.ROOT_CA): b"x" * (SMALL.max_slot_size + 1)})
    with pytest.raises(StoreFull, match="sec_tags"):
        store.commit({(t, SlotType.ROOT_CA): b"x" for t in range(10, 10 + SMALL.max_tags)})
    with pytest.raises(StoreFull, match="flash bank"):
        store.commit({(t, s): b"x" * 3000 for t in (2, 3) for s in list(SlotType)[:3]})
    store.mount()
    assert store.entries() == OLD


def test_a_torn_bank_is_ignored_at_mount() -> None:
    store = open_store(SMALL)
    store.commit(OLD)
    store.commit(NEW)
    # Corrupt the newest bank's image: the older one wins.
    base = store.active * store.bank_size + 20
    store.flash.program(base, b"\x00" * 8)
    store.mount()
    assert store.entries() == OLD


def test_power_cut_at_every_flash_byte_leaves_old_or_new() -> None:
    probe = open_store(SMALL)
    probe.commit(OLD)
    before = probe.flash.programmed
    probe.commit(NEW)
    total = probe.flash.programmed - before
    assert total > 100
    outcomes = {"old": 0, "new": 0}
    for n in range(total + 1):
        store = open_store(SMALL)
        store.commit(OLD)
        store.flash.cut_power_after(n)
        with contextlib.suppress(PowerCut):
            store.commit(NEW)
        store.mount()  # the reboot
        state = store.entries()
        assert state in (OLD, applied(OLD, NEW)), n
        outcomes["old" if state == OLD else "new"] += 1
        # And the next commit after the reboot works.
        store.commit({(9, SlotType.PSK): b"k"})
        store.mount()
        assert store.entries()[(9, SlotType.PSK)] == b"k"
    assert outcomes["old"] == total and outcomes["new"] == 1


def test_other_dialects_slot_numbers_round_trip() -> None:
    store = open_store(SMALL)
    store.commit({(4294967294, 6): b"identity"})
    store.mount()
    assert store.entries() == {(4294967294, 6): b"identity"}


def test_staged_entries_commit_with_the_kept_ones_and_program_less() -> None:
    full = open_store(SMALL)
    full.commit(OLD)
    before = full.flash.programmed
    full.commit(NEW)
    unstaged = full.flash.programmed - before

    store = open_store(SMALL)
    store.commit(OLD)
    store.stage_start()
    root = NEW[(2, SlotType.ROOT_CA)]
    at = store.stage_entry((2, SlotType.ROOT_CA), len(root))
    assert at is not None
    store.stage_data(at, root[:100])
    store.stage_data(at + 100, root[100:])
    before = store.flash.programmed
    store.commit(NEW)
    assert store.entries() == applied(OLD, NEW)
    assert store.flash.programmed - before < unstaged - len(root)
    store.mount()
    assert store.entries() == applied(OLD, NEW)


def test_a_staging_that_differs_from_the_commit_is_not_used() -> None:
    store = open_store(SMALL)
    store.commit(OLD)
    store.stage_start()
    at = store.stage_entry((2, SlotType.ROOT_CA), 5)
    store.stage_data(at, b"other")
    store.commit(NEW)
    store.mount()
    assert store.entries() == applied(OLD, NEW)


def test_power_cut_while_staging_leaves_the_old_store() -> None:
    store = open_store(SMALL)
    store.commit(OLD)
    store.stage_start()
    root = NEW[(2, SlotType.ROOT_CA)]
    at = store.stage_entry((2, SlotType.ROOT_CA), len(root))
    store.flash.cut_power_after(50)
    with contextlib.suppress(PowerCut):
        store.stage_data(at, root)
    store.mount()
    assert store.entries() == OLD
    store.commit(NEW)
    store.mount()
    assert store.entries() == applied(OLD, NEW)


def test_a_blank_spare_bank_needs_no_erase_but_a_used_one_does() -> None:
    store = open_store(SMALL)
    store.erase_spare()
    assert store.flash.take_busy() == 0.0
    store.commit(OLD)
    store.commit(NEW)
    store.flash.take_busy()
    store.erase_spare()
    assert store.flash.take_busy() == pytest.approx(SMALL.erase_ms / 1e3)
