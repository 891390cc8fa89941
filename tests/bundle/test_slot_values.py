"""Slot construction: plain ints become the enums, enums pass through, sec_tag is checked."""

from __future__ import annotations

import pytest

from provision.bundle.model import MAX_SEC_TAG, Encoding, Slot, SlotFlags, SlotType
from provision.errors import InputError


def test_plain_ints_become_enums() -> None:
    slot = Slot(1, 2, 1, b"k", 1)
    assert slot.type is SlotType.CLIENT_KEY
    assert slot.encoding is Encoding.PEM
    assert type(slot.flags) is SlotFlags and slot.flags == SlotFlags.ENCRYPTED
    assert slot == Slot(1, SlotType.CLIENT_KEY, Encoding.PEM, b"k", SlotFlags.ENCRYPTED)
    assert slot.type.label == "client_key"  # what the enum-only code paths rely on


def test_unknown_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        Slot(1, 9, 0, b"x")
    with pytest.raises(ValueError):
        Slot(1, SlotType.ROOT_CA, 7, b"x")


@pytest.mark.parametrize("tag", [-1, MAX_SEC_TAG + 1])
def test_sec_tag_range_checked_with_enums_given(tag: int) -> None:
    with pytest.raises(InputError, match="out of range"):
        Slot(tag, SlotType.ROOT_CA, Encoding.DER, b"x", SlotFlags.NONE)
