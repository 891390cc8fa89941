from __future__ import annotations

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotType
from provision.check import Severity, check_credential_set
from provision.pki.certs import cert_pem
from provision.pki.keys import load_private_key, serialize_private_key
from provision.targets import TARGETS, get_target


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def test_profiles_known() -> None:
    assert set(TARGETS) == {"default", "nrf91", "zephyr"}
    assert get_target("nrf91").lf_only_pem


def test_nrf91_at_command_size(pki) -> None:
    tag = 16842753
    # Build a root_ca item right at the AT%CMNG limit, then one byte over it.
    prefix = len(f'AT%CMNG=0,{tag},0,""')
    limit = TARGETS["nrf91"].item_limit
    base = cert_pem(pki.root.cert)
    fits = base + b"\n" * (limit - prefix - len(base))
    cs = CredentialSet.of([Slot(tag, SlotType.ROOT_CA, Encoding.PEM, fits)])
    assert "size.too_large" not in codes(check_credential_set(cs, target="nrf91"))
    cs = CredentialSet.of([Slot(tag, SlotType.ROOT_CA, Encoding.PEM, fits + b"\n")])
    found = [f for f in check_credential_set(cs, target="nrf91") if f.code == "size.too_large"]
    assert found and found[0].severity is Severity.ERROR and found[0].sec_tag == tag
    assert "4095" in found[0].message
    assert check_credential_set(cs, target="default") == []


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


def test_nrf91_crlf_pem_is_an_error(pki) -> None:
    crlf = cert_pem(pki.root.cert).replace(b"\n", b"\r\n")
    cs = CredentialSet.of([Slot(1, SlotType.ROOT_CA, Encoding.PEM, crlf)])
    assert codes(check_credential_set(cs, target="nrf91")) == {"pem.crlf"}
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
    from provision.targets import as_sent

    key, _ = device
    assert as_sent(SlotType.ROOT_CA, Encoding.DER, cert_der(pki.root.cert)) == cert_pem(
        pki.root.cert
    )
    der_key = serialize_private_key(key, encoding="der", password=b"pw")
    sent = as_sent(SlotType.CLIENT_KEY, Encoding.DER, der_key)
    assert sent.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    loaded = load_private_key(sent, b"pw", "sent")
    assert loaded.private_numbers() == key.private_numbers()
