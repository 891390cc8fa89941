"""How an esp_secure_cert partition can keep the client key tied to the chip's eFuse keys.

Sans-IO: bytes and keys in, TLV entries out (the cryptography is provision.pki.esp_efuse's).
Facts, from esp_secure_cert_mgr
(srcs/esp_secure_cert_tlv_read.c, srcs/esp_secure_cert_tlv_write.c,
private_include/esp_secure_cert_tlv_private.h), esp-secure-cert-tool 2.6.1
(esp_secure_cert/configure_ds.py, tlv_format_construct.py) and ESP-IDF's "Digital Signature
(DS)" and "HMAC" API guides:

- hmac-encrypted: the PRIV_KEY entry (flags 0x80) holds AES-256-GCM ciphertext and its 16-byte
  tag, no AAD. Key: HMAC-SHA256(eFuse key, 32 bytes 0xFF); IV: the first 16 bytes of
  HMAC-SHA256(eFuse key, eight little-endian words 0xABCDABCD). The firmware uses the first
  eFuse key block whose purpose is HMAC_UP.
- hmac-derived: no key in flash. A HMAC_ECDSA_KEY_SALT entry holds a salt; the PRIV_KEY entry
  of the same subtype is empty with flags 0x40. The chip derives a P-256 key as
  PBKDF2-HMAC-SHA256(eFuse HMAC_UP key, salt, 2048 iterations, 32 bytes), big-endian.
- ecdsa-peripheral: the key is in an eFuse key block (purpose ECDSA_KEY, ECDSA_KEY_P192 or
  ECDSA_KEY_P384); SEC_CFG names its block and the PRIV_KEY entry has flags 0x08.
- rsa-ds: no PRIV_KEY entry; DS_DATA holds the RSA key encrypted for the DS peripheral and
  DS_CONTEXT the eFuse key id and RSA size. The DS peripheral decrypts with
  AES-256-CBC, key HMAC-SHA256(eFuse key, 32 bytes 0xFF) (an eFuse block whose purpose is
  HMAC_DOWN_DIGITAL_SIGNATURE), the entry's IV, over Y || M || Rb || MD || M' || L || eight
  0x08 bytes, where Y is the private exponent, M the modulus, Rb = 2^(2 x bits) mod M, each
  little-endian and zero-padded to the chip's largest DS size, M' = -M^-1 mod 2^32,
  L = bits / 32 - 1, MD = SHA-256(Y || M || Rb || M' || L || IV).

Every mode needs a key burned into the chip's eFuses beforehand (espefuse.py burn_key); this
module, and provision, never burn eFuses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Any

from provision.bundle import esp_secure_cert as esc
from provision.pki import esp_efuse


class KeyStorage(str, Enum):
    PLAIN = "plain"
    HMAC_ENCRYPTED = "hmac-encrypted"
    HMAC_DERIVED = "hmac-derived"
    ECDSA_PERIPHERAL = "ecdsa-peripheral"
    RSA_DS = "rsa-ds"


# RSA sizes of each chip's DS peripheral, and the chips with an HMAC peripheral (the DS
# peripheral is keyed through it): esp-secure-cert-tool 2.6.1 configure_ds.py.
RSA_DS_BITS: dict[str, tuple[int, ...]] = {
    "esp32s2": (1024, 2048, 3072, 4096),
    "esp32s3": (1024, 2048, 3072, 4096),
    "esp32c3": (1024, 2048, 3072),
    "esp32c5": (1024, 2048, 3072, 4096),
    "esp32c6": (1024, 2048, 3072),
    "esp32h2": (1024, 2048, 3072),
    "esp32p4": (1024, 2048, 3072, 4096),
}
HMAC_CHIPS = frozenset(RSA_DS_BITS)
# Curves of each chip's ECDSA peripheral (bits), same source.
ECDSA_BITS: dict[str, tuple[int, ...]] = {
    "esp32h2": (256,),
    "esp32p4": (256,),
    "esp32c5": (256, 384),
    "esp32c61": (192, 256),
}
CHIPS = ("esp32", *sorted({*RSA_DS_BITS, *ECDSA_BITS}))
EFUSE_KEY_IDS = range(6)  # BLOCK_KEY0 .. BLOCK_KEY5
EFUSE_KEY_SIZE = 32
DEFAULT_SALT_SIZE = 32
_ECDSA_PURPOSE = {192: "ECDSA_KEY_P192", 256: "ECDSA_KEY", 384: "ECDSA_KEY_P384"}


@dataclass(frozen=True)
class Protection:
    """A key storage mode and what it needs. `efuse_key` is the 32-byte key the chip holds
    (or will hold) in eFuse: a secret, never in repr()."""

    storage: KeyStorage
    chip: str | None = None
    efuse_key: bytes | None = None
    efuse_key_id: int | None = None
    salt: bytes | None = None
    iv: bytes | None = None  # rsa-ds: fixed IV (else random)

    def __repr__(self) -> str:
        return (
            f"Protection({self.storage.value}, chip={self.chip}, efuse_key_id="
            f"{self.efuse_key_id}, efuse_key={'set' if self.efuse_key else None})"
        )


PLAIN = Protection(KeyStorage.PLAIN)


def requirement(p: Protection, key: Any = None) -> str | None:
    """What the chip must hold before it can use the partition, in words; None for plain."""
    block = f"BLOCK_KEY{p.efuse_key_id}" if p.efuse_key_id is not None else "BLOCK_KEYn"
    tail = "; provision does not burn eFuses (espefuse.py does, once: it cannot be undone)"
    if p.storage is KeyStorage.HMAC_ENCRYPTED:
        return (
            "hmac-encrypted: the chip decrypts the key with the first eFuse key block of "
            "purpose HMAC_UP, which must hold --esp-efuse-key-file "
            f"(espefuse.py burn_key {block} KEYFILE HMAC_UP){tail}"
        )
    if p.storage is KeyStorage.HMAC_DERIVED:
        return (
            "hmac-derived: the chip derives its P-256 key from the salt and the first eFuse "
            f"key block of purpose HMAC_UP (espefuse.py burn_key {block} KEYFILE HMAC_UP); "
            f"no key is stored in flash{tail}"
        )
    if p.storage is KeyStorage.ECDSA_PERIPHERAL:
        kind, bits = esp_efuse.key_kind(key)
        bits = bits if kind == "ec" else 256
        return (
            f"ecdsa-peripheral: the client_key must be in eFuse {block} with purpose "
            f"{_ECDSA_PURPOSE.get(bits, 'ECDSA_KEY')} (espefuse.py burn_key {block} "
            f"client.key {_ECDSA_PURPOSE.get(bits, 'ECDSA_KEY')}); the partition stores no key"
            f"{tail}"
        )
    if p.storage is KeyStorage.RSA_DS:
        return (
            "rsa-ds: the DS peripheral decrypts the key with eFuse "
            f"{block}, which must hold --esp-efuse-key-file with purpose "
            f"HMAC_DOWN_DIGITAL_SIGNATURE (espefuse.py burn_key {block} KEYFILE "
            f"HMAC_DOWN_DIGITAL_SIGNATURE); the partition stores no plain key{tail}"
        )
    return None


def problems(p: Protection, key: Any) -> list[tuple[str, str]]:
    """(code, message) for what makes `p` unusable with this client key (None: no key)."""
    out: list[tuple[str, str]] = []
    mode = p.storage.value
    if p.storage is KeyStorage.PLAIN:
        return out
    if p.chip is None:
        out.append(("chip", f"{mode}: name the chip (--esp-chip; one of {', '.join(CHIPS)})"))
        return out
    needs_efuse_key = p.storage in (
        KeyStorage.HMAC_ENCRYPTED,
        KeyStorage.HMAC_DERIVED,
        KeyStorage.RSA_DS,
    )
    if needs_efuse_key and p.chip not in HMAC_CHIPS:
        out.append(("chip", f"{mode}: the {p.chip} has no HMAC peripheral"))
    if p.storage is KeyStorage.ECDSA_PERIPHERAL and p.chip not in ECDSA_BITS:
        out.append(("chip", f"{mode}: the {p.chip} has no ECDSA peripheral"))
    if p.storage in (KeyStorage.RSA_DS, KeyStorage.ECDSA_PERIPHERAL) and p.efuse_key_id is None:
        out.append(("efuse_key_id", f"{mode}: give the eFuse key block (--esp-efuse-key-id 0-5)"))
    key_needed = p.storage in (KeyStorage.HMAC_ENCRYPTED, KeyStorage.RSA_DS)
    uses_key = key_needed or (p.efuse_key is not None and p.storage is KeyStorage.HMAC_DERIVED)
    if uses_key and (p.efuse_key is None or len(p.efuse_key) != EFUSE_KEY_SIZE):
        out.append(("efuse_key", f"{mode}: --esp-efuse-key-file must hold the 32-byte eFuse key"))
    if p.storage is KeyStorage.HMAC_DERIVED:
        if key is not None:
            out.append(("derived_key", f"{mode}: the chip derives its key; give no client_key"))
        if not p.salt:
            out.append(("salt", f"{mode}: no salt"))
        return out
    if key is None:
        out.append(("no_key", f"{mode}: needs the client_key"))
        return out
    kind, bits = esp_efuse.key_kind(key)
    if p.storage is KeyStorage.RSA_DS:
        sizes = RSA_DS_BITS.get(p.chip, ())
        if kind != "rsa":
            out.append(("key_type", f"{mode}: the DS peripheral signs with RSA keys only"))
        elif sizes and bits not in sizes:
            text = f"{mode}: the {p.chip} DS peripheral takes RSA {sizes}, not {bits}"
            out.append(("key_size", text))
    elif p.storage is KeyStorage.ECDSA_PERIPHERAL:
        curves = ECDSA_BITS.get(p.chip, ())
        if kind != "ec":
            out.append(("key_type", f"{mode}: the ECDSA peripheral takes ECDSA keys only"))
        elif curves and bits not in curves:
            text = f"{mode}: the {p.chip} ECDSA peripheral takes P-{curves}, not P-{bits}"
            out.append(("key_size", text))
    return out


def ds_data(key: Any, efuse_key: bytes, chip: str, iv: bytes) -> bytes:
    """The DS_DATA entry's data for `key` on `chip` (esp_ds_data_t)."""
    length, c = esp_efuse.ds_ciphertext(key, efuse_key, max(RSA_DS_BITS[chip]), iv)
    return esc.DsData.build({"rsa_length": length, "iv": iv, "c": c})


def key_entries(p: Protection, key: Any, key_bytes: bytes, subtype: int = 0) -> list[esc.Entry]:
    """The entries that carry the client key in mode `p` (after `problems` found none).
    `key_bytes`: the plain entry's data (PEM with its NUL, or DER)."""
    if p.storage is KeyStorage.PLAIN:
        return [esc.Entry(esc.TlvType.PRIV_KEY, subtype, key_bytes)]
    if p.storage is KeyStorage.HMAC_ENCRYPTED:
        assert p.efuse_key is not None
        data = esp_efuse.hmac_encrypt(key_bytes, p.efuse_key)
        return [esc.Entry(esc.TlvType.PRIV_KEY, subtype, data, esc.FLAG_HMAC_ENCRYPTED)]
    if p.storage is KeyStorage.HMAC_DERIVED:
        assert p.salt is not None
        return [
            esc.Entry(esc.TlvType.HMAC_ECDSA_KEY_SALT, subtype, p.salt),
            esc.Entry(esc.TlvType.PRIV_KEY, subtype, b"", esc.FLAG_HMAC_ECDSA_DERIVED),
        ]
    assert p.efuse_key_id is not None
    if p.storage is KeyStorage.ECDSA_PERIPHERAL:
        block = esc.EFUSE_BLK_KEY0 + p.efuse_key_id
        return [
            esc.Entry(
                esc.TlvType.SEC_CFG, subtype, esc.SecCfg.build({"priv_key_efuse_block": block})
            ),
            esc.Entry(esc.TlvType.PRIV_KEY, subtype, b"", esc.FLAG_ECDSA_PERIPHERAL),
        ]
    assert p.efuse_key is not None and p.chip is not None
    iv = p.iv or os.urandom(16)  # esp-secure-cert-tool draws it the same way
    context = {"efuse_key_id": p.efuse_key_id, "rsa_length_bits": esp_efuse.key_kind(key)[1]}
    return [
        esc.Entry(esc.TlvType.DS_DATA, subtype, ds_data(key, p.efuse_key, p.chip, iv)),
        esc.Entry(esc.TlvType.DS_CONTEXT, subtype, esc.DsContext.build(context)),
    ]


# Where each type goes in an image: Espressif's tool writes the DS or SEC_CFG entries first,
# then the certificates and the key; a signature block signs what comes before it.
_RANK: dict[int, int] = {
    esc.TlvType.DS_DATA: 0,
    esc.TlvType.DS_CONTEXT: 1,
    esc.TlvType.SEC_CFG: 2,
    esc.TlvType.CA_CERT: 3,
    esc.TlvType.DEV_CERT: 4,
    esc.TlvType.HMAC_ECDSA_KEY_SALT: 5,
    esc.TlvType.PRIV_KEY: 6,
    esc.TlvType.SIGNATURE_BLOCK: 9,
}


def ordered(entries: list[esc.Entry]) -> list[esc.Entry]:
    return sorted(entries, key=lambda e: _RANK.get(e.type, 8))  # stable: subtypes stay
