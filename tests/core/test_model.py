import pytest

from provision.bundle.model import (
    MAX_SEC_TAG,
    CredentialSet,
    Encoding,
    Slot,
    SlotFlags,
    SlotType,
)
from provision.errors import InputError


def test_slot_repr_never_shows_secret_bytes():
    secret = b"-----BEGIN PRIVATE KEY-----supersecret"
    slot = Slot(1, SlotType.CLIENT_KEY, Encoding.PEM, secret, SlotFlags.ENCRYPTED)
    text = repr(slot) + repr(CredentialSet.of([slot]))
    assert "supersecret" not in text
    assert "size=38" in text


@pytest.mark.parametrize("tag", [-1, MAX_SEC_TAG + 1, 2**32])
def test_sec_tag_out_of_range_is_refused(tag):
    with pytest.raises(InputError, match="out of range"):
        Slot(tag, SlotType.ROOT_CA, Encoding.DER, b"x")


def test_duplicate_slot_refused_but_several_roots_allowed():
    roots = [Slot(7, SlotType.ROOT_CA, Encoding.DER, bytes([i])) for i in range(3)]
    assert len(CredentialSet.of(roots).roots(7)) == 3
    with pytest.raises(InputError, match="duplicate slot client_cert in sec_tag 7"):
        CredentialSet.of(
            [
                Slot(7, SlotType.CLIENT_CERT, Encoding.DER, b"a"),
                Slot(7, SlotType.CLIENT_CERT, Encoding.DER, b"b"),
            ]
        )


def test_canonical_order_does_not_depend_on_input_order():
    a = Slot(9, SlotType.CLIENT_CERT, Encoding.DER, b"c")
    b = Slot(2, SlotType.PSK, Encoding.RAW, b"p")
    c = Slot(9, SlotType.ROOT_CA, Encoding.DER, b"r")
    assert CredentialSet.of([a, b, c]) == CredentialSet.of([c, a, b])
    assert [s.sec_tag for s in CredentialSet.of([a, b, c])] == [2, 9, 9]


@pytest.mark.parametrize("name", ["root_ca", "root-ca", "ROOT_CA", " Root_Ca "])
def test_slot_names_parse(name):
    assert SlotType.parse(name) is SlotType.ROOT_CA


def test_unknown_slot_name_lists_valid_ones():
    with pytest.raises(InputError, match=r"unknown slot name 'cert'.*client_cert"):
        SlotType.parse("cert")
