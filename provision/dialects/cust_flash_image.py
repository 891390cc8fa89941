"""A credential set as a legacy cust_flash image (offline only): mapping, what the layout
refuses, describe.

The layout (provision.bundle.esp_cust_flash) has fixed slots: one device certificate (2048
bytes), one CA certificate (4096 bytes) and the private key (4096 bytes), or instead of the
key the DS peripheral's ciphertext and IV. Items are the bytes the TLV image would hold
(provision.dialects.esp32_image: re-serialized as Espressif's tool does, PEM with its NUL), so
the TLV planner's checks (one sec_tag, no PSK, key types, a decrypted key) apply as they are;
this module adds what only the fixed slots refuse. The esp32 dialect writes TLV images only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.bundle import esp_cust_flash as cf
from provision.bundle import esp_secure_cert as esc
from provision.bundle.model import CredentialSet, SlotType
from provision.dialects import esp32_image
from provision.dialects import esp32_keys as keys
from provision.dialects.base import Refusal
from provision.errors import PolicyError

# Key storage modes the metadata has a place for: a key in the clear, or the DS variant's
# ciphertext, IV, RSA size and eFuse key id. No flags, salt or SEC_CFG.
STORAGES = (keys.KeyStorage.PLAIN, keys.KeyStorage.RSA_DS)
# The chips Espressif's tool lays the DS variant out for (custflash_format.py's
# ciphertext_size: ESP_DS_C_LEN + 16, from the chip's largest DS key); newer chips came with
# the TLV format.
DS_CHIPS = ("esp32s2", "esp32s3", "esp32c3")
_SLOT_OF = {
    "dev_cert": SlotType.CLIENT_CERT,
    "ca_cert": SlotType.ROOT_CA,
    "priv_key": SlotType.CLIENT_KEY,
}


def _refusal(
    code: str, message: str, sec_tag: int | None = None, slot: SlotType | None = None
) -> Refusal:
    return Refusal(f"cust_flash.{code}", message, sec_tag, slot)


def _image(entries: Sequence[esc.Entry]) -> cf.Image:
    """The cust_flash items for the TLV entries of a set (CA, device cert, key or DS)."""
    by_type = {e.type: e for e in entries}
    ds = None
    if esc.TlvType.DS_DATA in by_type:
        data = esc.DsData.parse(by_type[esc.TlvType.DS_DATA].data)
        context = esc.DsContext.parse(by_type[esc.TlvType.DS_CONTEXT].data)
        ds = cf.Ds(bytes(data.c), bytes(data.iv), context.rsa_length_bits, context.efuse_key_id)

    def item(kind: esc.TlvType) -> bytes | None:
        entry = by_type.get(kind)
        return entry.data if entry is not None else None

    return cf.Image(
        dev_cert=item(esc.TlvType.DEV_CERT),
        ca_cert=item(esc.TlvType.CA_CERT),
        priv_key=item(esc.TlvType.PRIV_KEY),
        ds=ds,
    )


def refusals(
    credentials: CredentialSet,
    partition_size: int = cf.IMAGE_SIZE,
    protection: keys.Protection = keys.PLAIN,
) -> list[Refusal]:
    """What the cust_flash layout cannot hold (errors) and what the user should know
    (warnings, the TLV planner's: a decrypted key, the eFuse key the chip must hold)."""
    if protection.storage not in STORAGES:
        return [
            _refusal(
                "key_storage",
                f"the cust_flash layout has no place for a {protection.storage.value} key "
                "(plain or rsa-ds only; use the TLV layout)",
            )
        ]
    if protection.storage is keys.KeyStorage.RSA_DS and protection.chip not in DS_CHIPS:
        return [
            _refusal(
                "ds_chip",
                f"the cust_flash layout's DS variant is laid out for {', '.join(DS_CHIPS)} "
                f"only, not {protection.chip or 'an unnamed chip (--esp-chip)'} (use the TLV "
                "layout)",
            )
        ]
    # The TLV planner's checks; its partition size is not this layout's.
    out = esp32_image.refusals(credentials, 1 << 32, protection)
    if any(not r.warning for r in out):
        return out
    tag = esp32_image.the_tag(credentials)
    roots = credentials.roots(tag)
    if len(roots) > 1:
        out.append(
            _refusal(
                "one_root_ca",
                f"the cust_flash layout holds one CA certificate; sec_tag {tag} has "
                f"{len(roots)} root_ca",
                tag,
                SlotType.ROOT_CA,
            )
        )
    for slot_type in (SlotType.CLIENT_CERT, SlotType.CLIENT_KEY):
        if credentials.get(tag, slot_type) is None:
            out.append(
                _refusal(
                    "incomplete",
                    f"the cust_flash layout needs a {slot_type.label} (it holds a device "
                    "certificate, its key and at most one CA)",
                    tag,
                    slot_type,
                )
            )
    if any(not r.warning for r in out):
        return out
    image = _image(esp32_image.entries_for(credentials, protection))
    for s in cf.overflows(image):
        slot = _SLOT_OF.get(s.name)
        label = slot.label if slot is not None else s.name
        what = " (a chain: give the leaf alone)" if _is_chain(s.data) else ""
        out.append(
            _refusal(
                "slot_too_big",
                f"{label} is {len(s.data)} bytes; its cust_flash slot holds {s.capacity}{what}",
                tag,
                slot,
            )
        )
    if partition_size < cf.IMAGE_SIZE:
        out.append(
            Refusal(
                "esp_secure_cert.too_big",
                f"the cust_flash image is {cf.IMAGE_SIZE} bytes (0x{cf.IMAGE_SIZE:x}); the "
                f"partition holds {partition_size} (0x{partition_size:x})",
            )
        )
    return out


def _is_chain(data: bytes) -> bool:
    return data.count(b"-----BEGIN CERTIFICATE-----") > 1


def build(
    credentials: CredentialSet,
    *,
    partition_size: int = cf.IMAGE_SIZE,
    protection: keys.Protection = keys.PLAIN,
) -> tuple[bytes, cf.Image, list[Refusal]]:
    """(image, items, warnings); PolicyError for what the layout cannot hold."""
    found = refusals(credentials, partition_size, protection)
    errors = [r for r in found if not r.warning]
    if errors:
        raise PolicyError(f"esp32: {errors[0].message}; nothing written", code=errors[0].code)
    image = _image(esp32_image.entries_for(credentials, protection))
    return cf.encode(image), image, found


_ENTRY_TYPE = {
    "dev_cert": esc.TlvType.DEV_CERT,
    "ca_cert": esc.TlvType.CA_CERT,
    "priv_key": esc.TlvType.PRIV_KEY,
}


def describe_items(image: cf.Image) -> list[dict[str, Any]]:
    """One row per slot, in the TLV rows' shape (type, offset, size, encoding, sha256,
    subject); key bytes as a digest only."""
    rows = []
    for s in cf.slots(image):
        kind = _ENTRY_TYPE.get(s.name)
        if kind is not None:
            row = esp32_image.describe_entries([esc.Entry(kind, 0, s.data)], [s.offset])[0]
        else:
            row = esp32_image.describe_entries([esc.Entry(0xFF, 0, s.data)], [s.offset])[0]
            row.update(type=s.name, encoding="raw")
        for key in ("type_id", "flags", "subtype"):  # TLV fields; a slot has none
            row.pop(key, None)
        row["capacity"] = s.capacity
        if s.name == "ds_ciphertext" and image.ds is not None:
            row.update(rsa_bits=image.ds.rsa_bits, efuse_key_id=image.ds.efuse_key_id)
        rows.append(row)
    return rows


def describe(data: bytes, path: Path | None = None) -> dict[str, Any]:
    image = cf.decode(data)
    return {
        "file": str(path) if path else None,
        "format": "esp-secure-cert",
        "layout": "cust_flash",
        "legacy": True,
        "variant": "ds" if image.ds is not None else "plain",
        "size": len(data),
        "entries": describe_items(image),
    }
