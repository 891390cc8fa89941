"""The native simulator's COMMIT merge (docs/protocol.md): a sec_tag in the bundle replaces
the stored tag whole, except a stored client_key the bundle carries none of for that tag."""

from __future__ import annotations

import random

from simkit import make_set, make_store, session, sim_transport

from provision.bundle import format as bundle_format
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.sim.native import NativeDevice
from provision.sim.profile import profile
from provision.sim.serve import SimContext
from provision.sim.store import open_store


def _device() -> NativeDevice:
    store = open_store(profile("default"))
    return NativeDevice(SimContext("native", store, store.profile, {}, seed=1))


def _apply(dev: NativeDevice, *slots: Slot) -> None:
    dev.apply_bundle(bundle_format.encode(CredentialSet.of(list(slots))))


def _slot(tag: int, kind: SlotType, data: bytes) -> Slot:
    return Slot(tag, kind, Encoding.DER, data)


def test_cert_only_bundle_keeps_the_keygen_key_and_drops_the_rest_of_the_tag() -> None:
    dev = _device()
    _apply(dev, _slot(42, SlotType.ROOT_CA, b"old root"), _slot(43, SlotType.ROOT_CA, b"r43"))
    dev.keygen(42, "CN=dev-1")
    key = dev.store.entries()[(42, SlotType.CLIENT_KEY)]
    _apply(dev, _slot(42, SlotType.CLIENT_CERT, b"cert"))
    assert dev.store.entries() == {
        (42, SlotType.CLIENT_CERT): b"cert",
        (42, SlotType.CLIENT_KEY): key,
        (43, SlotType.ROOT_CA): b"r43",
    }


def test_bundle_with_a_key_replaces_the_stored_key() -> None:
    dev = _device()
    dev.keygen(42, "CN=dev-1")
    _apply(dev, _slot(42, SlotType.CLIENT_CERT, b"cert"), _slot(42, SlotType.CLIENT_KEY, b"k2"))
    assert dev.store.entries() == {
        (42, SlotType.CLIENT_CERT): b"cert",
        (42, SlotType.CLIENT_KEY): b"k2",
    }


def test_key_of_a_tag_the_bundle_does_not_name_is_untouched_and_keys_do_not_move() -> None:
    dev = _device()
    _apply(dev, _slot(7, SlotType.CLIENT_KEY, b"k7"), _slot(9, SlotType.CLIENT_KEY, b"k9"))
    _apply(dev, _slot(9, SlotType.ROOT_CA, b"r9"))
    assert dev.store.entries() == {
        (7, SlotType.CLIENT_KEY): b"k7",
        (9, SlotType.CLIENT_KEY): b"k9",
        (9, SlotType.ROOT_CA): b"r9",
    }


def test_a_staged_transfer_keeps_other_tags_and_programs_each_entry_once() -> None:
    rng = random.Random(3)
    old = make_set(rng, (1, 2))
    store = make_store(old)
    new = make_set(rng, (2, 3), size=600)
    s = session(sim_transport(store))
    programmed = store.flash.programmed
    s.write(new)
    staged_total = store.flash.programmed - programmed
    kept = {k: v for k, v in store.entries().items() if k[0] == 1}
    assert store.entries() == {**kept, **{x.key: x.data for x in new}}
    assert kept == {x.key: x.data for x in old if x.sec_tag == 1}
    # Staged entries plus kept entries plus the count and bank header: nothing twice.
    image = sum(9 + len(v) for v in store.entries().values()) + 2
    assert staged_total == image + 16
    store.mount()
    assert store.entries() == {**kept, **{x.key: x.data for x in new}}


def test_hello_is_answered_while_the_spare_bank_erases() -> None:
    store = make_store(make_set(random.Random(4), (1,)))  # its spare bank needs an erase
    transport = sim_transport(store)
    session(transport)
    assert transport.now < store.profile.erase_ms / 1e3 / 4
