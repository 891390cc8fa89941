from __future__ import annotations

import pytest

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.check import Severity, check_credential_set
from provision.dialects import (
    DIALECTS,
    TARGETS,
    at_cmng,
    dialect_profile,
    profile_for_target,
    target_names,
    zephyr_shell,
)
from provision.errors import PolicyError
from provision.pki.certs import cert_pem
from provision.pki.keys import load_private_key, serialize_private_key


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_every_dialect_declares_a_profile_that_check_knows_by_both_names() -> None:
    assert {"default", "nrf91", "zephyr", "native"} <= set(target_names())
    for dialect in DIALECTS:
        profile = dialect_profile(dialect)
        assert profile.dialect == dialect
        # The registry's table, which help texts read without importing a dialect.
        assert profile.target == TARGETS[dialect]
        assert profile_for_target(dialect) is profile
        assert profile_for_target(profile.target).target == profile.target
    assert profile_for_target("nrf91") is at_cmng.PROFILE
    assert profile_for_target("zephyr") is zephyr_shell.PROFILE


def _root_of_command_size(pki, tag: int, size: int) -> CredentialSet:
    """A root_ca item whose AT%CMNG command is exactly `size` characters long."""
    base = cert_pem(pki.root.cert)
    probe = CredentialSet.of([Slot(tag, SlotType.ROOT_CA, Encoding.PEM, base)])
    (plan,) = at_cmng.plan_write(probe)
    # slot_pem keeps one final LF; padding goes before it as spaces after the END line.
    pad = size - at_cmng.command_size(plan)
    data = base.rstrip(b"\n") + b" " * pad + b"\n"
    return CredentialSet.of([Slot(tag, SlotType.ROOT_CA, Encoding.PEM, data)])


def test_nrf91_check_and_driver_agree_on_the_at_command_limit(pki) -> None:
    tag = 16842753
    limit = at_cmng.MAX_COMMAND_CHARS
    fits = _root_of_command_size(pki, tag, limit)
    assert "size.too_large" not in codes(check_credential_set(fits, target="nrf91"))
    at_cmng.plan_write(fits)  # the driver takes what the check passes
    over = _root_of_command_size(pki, tag, limit + 1)
    found = [f for f in check_credential_set(over, target="nrf91") if f.code == "size.too_large"]
    assert found and found[0].severity is Severity.ERROR and found[0].sec_tag == tag
    assert str(limit) in found[0].message
    # ...and refuses, with the same words, what the check refuses.
    with pytest.raises(PolicyError) as refused:
        at_cmng.plan_write(over)
    assert refused.value.message == found[0].message
    assert check_credential_set(over, target="default") == []


def test_nrf91_roots_of_one_tag_count_together(pki) -> None:
    big = cert_pem(pki.root.cert) * 4
    slots = [
        Slot(7, SlotType.ROOT_CA, Encoding.PEM, big),
        Slot(7, SlotType.ROOT_CA, Encoding.PEM, cert_pem(pki.other_root.cert) * 4),
    ]
    cs = CredentialSet.of(slots)
    # Each alone fits; the tag's concatenated root_ca item does not.
    assert len(big) < 4000
    assert "size.too_large" in codes(check_credential_set(cs, target="nrf91"))


def test_nrf91_crlf_pem_passes_because_the_driver_sends_lf(pki) -> None:
    crlf = cert_pem(pki.root.cert).replace(b"\n", b"\r\n")
    cs = CredentialSet.of([Slot(1, SlotType.ROOT_CA, Encoding.PEM, crlf)])
    assert check_credential_set(cs, target="nrf91") == []
    (plan,) = at_cmng.plan_write(cs)
    assert b"\r" not in plan.content
    assert check_credential_set(cs, target="zephyr") == []


def test_nrf91_password_length(pki, device) -> None:
    key, cert = device
    pw = b"x" * 33
    slots = [
        Slot(1, SlotType.CLIENT_CERT, Encoding.PEM, cert_pem(cert)),
        Slot(1, SlotType.CLIENT_KEY, Encoding.PEM, serialize_private_key(key, password=pw)),
        Slot(1, SlotType.KEY_PASSWORD, Encoding.RAW, pw),
    ]
    found = codes(check_credential_set(CredentialSet.of(slots), target="nrf91"))
    assert "key.password_too_long" in found


def test_zephyr_cred_buffer(pki, device) -> None:
    _key, cert = device
    leaf = cert_pem(cert)
    ok = CredentialSet.of([Slot(1, SlotType.CLIENT_CERT, Encoding.PEM, leaf)])
    assert "size.too_large" not in codes(check_credential_set(ok, target="zephyr"))
    chain = leaf + cert_pem(pki.intermediate.cert)
    big = CredentialSet.of([Slot(1, SlotType.CLIENT_CERT, Encoding.PEM, chain)])
    assert "size.too_large" in codes(check_credential_set(big, target="zephyr"))
    # 765 raw bytes is 1020 base64 characters: the largest item a 1024-byte buffer takes.
    psk = lambda n: CredentialSet.of([Slot(1, SlotType.PSK, Encoding.RAW, b"k" * n)])  # noqa: E731
    assert check_credential_set(psk(765), target="zephyr") == []
    assert codes(check_credential_set(psk(766), target="zephyr")) == {"size.too_large"}


def test_zephyr_item_count_warning(pki) -> None:
    slots = [Slot(t, SlotType.ROOT_CA, Encoding.PEM, cert_pem(pki.root.cert)) for t in range(5)]
    found = check_credential_set(CredentialSet.of(slots), target="zephyr")
    assert {(f.code, f.severity) for f in found} == {("size.too_many_items", Severity.WARNING)}


def test_der_items_are_sized_as_the_pem_sent(pki, device) -> None:
    from provision.pki.certs import cert_der

    key, _ = device
    der_root = Slot(1, SlotType.ROOT_CA, Encoding.DER, cert_der(pki.root.cert))
    assert at_cmng.slot_content(der_root) == cert_pem(pki.root.cert)
    der_key = serialize_private_key(key, encoding="der", password=b"pw")
    key_slot = Slot(1, SlotType.CLIENT_KEY, Encoding.DER, der_key, SlotFlags.ENCRYPTED)
    sent = at_cmng.slot_content(key_slot)
    assert sent.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    loaded = load_private_key(sent, b"pw", "sent")
    assert loaded.private_numbers() == key.private_numbers()
