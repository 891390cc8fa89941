"""What mbedTLS cannot load of what provision.pki makes: advice for devices whose TLS stack
it is (Zephyr, ESP-IDF, our firmware stub; the nRF91 modem's own stack is not).

Evidence: tests/tls/test_stub_mbedtls.py hands every kind of client credential the PKI makes
to the posix stub linked with Debian's mbedTLS 2.28 and records which handshakes it cannot
even start: Ed25519 (no EdDSA in 2.28) and password-encrypted PKCS#8 keys (PBES2 with AES,
which cryptography writes; 2.28 decrypts DES/3DES only). That test also holds this module
to the same answer for each kind, so a newer mbedTLS or a new key type shows in both places.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provision.bundle.model import CredentialSet, SlotFlags, SlotType
from provision.dialects.base import Refusal
from provision.errors import ProvisionError

if TYPE_CHECKING:
    from provision.pki.keys import PrivateKey, PublicKeyTypes


def _is_ed25519(slot_type: SlotType, data: bytes) -> bool:
    from provision.pki.certs import load_certificates
    from provision.pki.keys import describe_key, load_private_key

    keys: list[PrivateKey | PublicKeyTypes]
    try:
        if slot_type.is_certificate:
            keys = [c.public_key() for c in load_certificates(data, slot_type.label)]
        else:
            keys = [load_private_key(data, None, slot_type.label)]
    except ProvisionError:
        return False  # unreadable: the check says so where it parses the item
    return any(describe_key(k).startswith("ed") for k in keys)


def _is_encrypted(flags: SlotFlags, data: bytes) -> bool:
    from provision.pki.keys import key_is_encrypted

    return bool(flags & SlotFlags.ENCRYPTED) or key_is_encrypted(data)


def advice(credentials: CredentialSet) -> list[Refusal]:
    """Warnings for the items an mbedTLS-based device would store but cannot use."""
    out: list[Refusal] = []
    for slot in credentials:
        where = f"sec_tag {slot.sec_tag} {slot.type.label}"
        if slot.type is SlotType.CLIENT_KEY and _is_encrypted(slot.flags, slot.data):
            out.append(
                Refusal(
                    "mbedtls.encrypted_key",
                    f"{where} is password-encrypted: mbedTLS 2.28 decrypts only DES/3DES "
                    "PKCS#8 keys, not the AES ones provision.pki writes; give the key "
                    "unencrypted if the device's TLS stack is mbedTLS",
                    slot.sec_tag,
                    slot.type,
                    warning=True,
                )
            )
        elif slot.type in (SlotType.CLIENT_CERT, SlotType.CLIENT_KEY) and _is_ed25519(
            slot.type, slot.data
        ):
            out.append(
                Refusal(
                    "mbedtls.ed25519",
                    f"{where} is Ed25519: mbedTLS 2.28 has no EdDSA, so the device cannot "
                    "use it for TLS; use P-256",
                    slot.sec_tag,
                    slot.type,
                    warning=True,
                )
            )
    return out
