"""Shared builders for the simulator and fault tests (plain functions, no fixtures)."""

from __future__ import annotations

import random

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.dialects.native import NativeSession
from provision.sim.faults import FaultPlan
from provision.sim.profile import PROFILES
from provision.sim.serve import SimContext, SimRunner, SimTransport
from provision.sim.store import SlotStore, open_store


def make_set(rng: random.Random, tags: tuple[int, ...], size: int = 120) -> CredentialSet:
    slots = []
    for tag in tags:
        for slot_type in (SlotType.ROOT_CA, SlotType.CLIENT_CERT, SlotType.CLIENT_KEY):
            n = rng.randint(size // 2, size)
            slots.append(Slot(tag, slot_type, Encoding.DER, rng.randbytes(n)))
    return CredentialSet.of(slots)


def expected_after(old: dict, creds: CredentialSet) -> dict:
    """What the store must hold after `creds` is committed over `old` (tags replaced whole)."""
    tags = set(creds.sec_tags)
    new = {k: v for k, v in old.items() if k[0] not in tags}
    new.update({s.key: s.data for s in creds})
    return new


def make_store(old: CredentialSet | None = None, profile: str = "default") -> SlotStore:
    store = open_store(PROFILES[profile])
    if old is not None:
        store.replace({s.key: s.data for s in old})
    return store


def sim_transport(
    store: SlotStore, faults: FaultPlan | None = None, baud: int | None = 115200, **options: str
) -> SimTransport:
    ctx = SimContext("native", store, store.profile, dict(options), seed=1)
    return SimTransport(SimRunner("native", ctx, baud=baud, faults=faults))


def session(transport: SimTransport, timeout: float = 0.5, retries: int = 4) -> NativeSession:
    return NativeSession(transport, timeout=timeout, retries=retries)


def flash_state(store: SlotStore) -> dict:
    """What a device would find after a reboot: mount the flash afresh."""
    store.mount()
    return store.entries()
