"""The native simulator's COMMIT merge (docs/protocol.md): a sec_tag in the bundle replaces
the stored tag whole, except a stored client_key the bundle carries none of for that tag."""

from __future__ import annotations

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
