"""A credential set as an esp_secure_cert image (the esp32 dialect's planner): mapping,
what the partition refuses, describe.

One sec_tag maps to the partition: its root_ca items become CA_CERT entries (subtypes 0, 1,
... in the set's canonical order), client_cert the DEV_CERT entry, client_key the PRIV_KEY
entry (subtype 0). The partition has no place for a PSK. Entry order and serializations are
those of Espressif's configure_esp_secure_cert.py (CA, device cert, key, integrity), so an
image we pack equals the one their tool generates for the same files (tests/esp32).

A password-encrypted client_key is decrypted here, on the host: esp_secure_cert_mgr reads
keys in the clear (or through eFuse HMAC/DS peripherals, which we do not drive), so such a
partition is only as secret as the flash, i.e. it relies on flash encryption.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provision.bundle import esp_secure_cert as esc
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.dialects.base import Refusal
from provision.errors import InputError, PolicyError
from provision.pki.certs import describe_certificate, to_der, to_pem
from provision.pki.keys import describe_key, load_private_key, serialize_private_key

# Key types (provision.pki.keys.describe_key) ESP-IDF's mbedTLS and the chips' peripherals
# use for TLS client authentication; other ECDSA curves parse but rarely work end to end.
_GOOD_KEYS = ("p256", "p384")


def _refusal(code: str, message: str, slot: Slot, *, warning: bool = False) -> Refusal:
    return Refusal(f"esp_secure_cert.{code}", message, slot.sec_tag, slot.type, warning)


def _password(credentials: CredentialSet, sec_tag: int) -> bytes | None:
    slot = credentials.get(sec_tag, SlotType.KEY_PASSWORD)
    return slot.data if slot else None


def _cert_bytes(slot: Slot) -> bytes:
    """Re-serialized by `cryptography`, as Espressif's tool does; a PEM client_cert chain
    keeps every certificate (their tool keeps the first only; mbedTLS parses them all)."""
    if slot.encoding is Encoding.PEM:
        return esc.item_bytes(to_pem(slot.data, slot.type.label), True)
    return to_der(slot.data, slot.type.label)


def _key(slot: Slot, password: bytes | None) -> Any:
    return load_private_key(slot.data, password if slot.flags & SlotFlags.ENCRYPTED else None, "")


def _key_bytes(slot: Slot, password: bytes | None) -> bytes:
    pem = slot.encoding is Encoding.PEM
    out = serialize_private_key(
        _key(slot, password), encoding="pem" if pem else "der", traditional=True
    )
    return esc.item_bytes(out, pem)


def the_tag(credentials: CredentialSet) -> int:
    tags = credentials.sec_tags
    if len(tags) != 1:
        raise InputError(
            f"an esp_secure_cert partition holds one sec_tag; the set has {len(tags)} "
            f"({', '.join(map(str, tags))})",
            code="esp_secure_cert.one_tag",
        )
    return tags[0]


def entries_for(credentials: CredentialSet) -> list[esc.Entry]:
    """The TLV entries for a set that passed `preflight` (no PSK, one sec_tag)."""
    tag = the_tag(credentials)
    entries = [
        esc.Entry(esc.TlvType.CA_CERT, i, _cert_bytes(s))
        for i, s in enumerate(credentials.roots(tag))
    ]
    cert = credentials.get(tag, SlotType.CLIENT_CERT)
    if cert is not None:
        entries.append(esc.Entry(esc.TlvType.DEV_CERT, 0, _cert_bytes(cert)))
    key = credentials.get(tag, SlotType.CLIENT_KEY)
    if key is not None:
        entries.append(
            esc.Entry(esc.TlvType.PRIV_KEY, 0, _key_bytes(key, _password(credentials, tag)))
        )
    return entries


def refusals(credentials: CredentialSet, partition_size: int = esc.DEFAULT_SIZE) -> list[Refusal]:
    """What esp_secure_cert_mgr cannot hold or use, and the size against the partition
    (warnings: what it holds but where the user should know more)."""
    out: list[Refusal] = []
    tags = credentials.sec_tags
    if len(tags) > 1:
        out.append(
            Refusal(
                "esp_secure_cert.one_tag",
                f"an esp_secure_cert partition holds one sec_tag; the set has {len(tags)} "
                f"({', '.join(map(str, tags))})",
            )
        )
        return out
    for slot in credentials:
        if slot.type in (SlotType.PSK, SlotType.PSK_IDENTITY):
            out.append(
                _refusal(
                    "no_psk",
                    f"esp_secure_cert has no entry for {slot.type.label} (certificates and "
                    "keys only)",
                    slot,
                )
            )
        if slot.type is not SlotType.CLIENT_KEY:
            continue
        password = _password(credentials, slot.sec_tag)
        kind = describe_key(_key(slot, password))
        if kind.startswith("ec-"):
            out.append(
                _refusal(
                    "curve",
                    f"client_key is {kind}: ESP-IDF's mbedTLS and the ECDSA peripheral expect "
                    "P-256 (or P-384)",
                    slot,
                    warning=True,
                )
            )
        elif kind not in _GOOD_KEYS and not kind.startswith("rsa"):
            out.append(
                _refusal(
                    "key_type",
                    f"client_key is {kind}: esp_secure_cert_mgr holds RSA or ECDSA keys only",
                    slot,
                )
            )
        if slot.flags & SlotFlags.ENCRYPTED:
            out.append(
                _refusal(
                    "key_decrypted",
                    "client_key is password-encrypted: it is decrypted on the host and stored "
                    "in the clear, so the partition then relies on flash encryption (mark it "
                    "'encrypted' in partitions.csv)",
                    slot,
                    warning=True,
                )
            )
    if any(not r.warning for r in out):
        return out
    size = len(esc.encode(entries_for(credentials)))
    if size > partition_size:
        out.append(
            Refusal(
                "esp_secure_cert.too_big",
                f"the esp_secure_cert image is {size} bytes; the partition holds "
                f"{partition_size} (0x{partition_size:x})",
            )
        )
    return out


def build(
    credentials: CredentialSet, *, partition_size: int = esc.DEFAULT_SIZE
) -> tuple[bytes, tuple[esc.Entry, ...], list[Refusal]]:
    """(image, entries, warnings); PolicyError for what the partition cannot hold."""
    found = refusals(credentials, partition_size)
    errors = [r for r in found if not r.warning]
    if errors:
        raise PolicyError(f"esp32: {errors[0].message}; nothing written", code=errors[0].code)
    entries = tuple(entries_for(credentials))
    return esc.encode(entries), entries, found


def _cert_row(data: bytes) -> dict[str, Any]:
    body, _ = esc.strip_item(data)
    try:
        cert = describe_certificate(body, "esp_secure_cert entry")
    except InputError as err:
        return {"certificate_error": err.message}
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "not_after": cert.not_after.isoformat(),
    }


def describe_entries(
    entries: Sequence[esc.Entry], offsets: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """One row per entry; key entries show a digest only, never their bytes."""
    rows = []
    for i, e in enumerate(entries):
        _, pem = esc.strip_item(e.data)
        row: dict[str, Any] = {
            "type": esc.TlvType.label_of(e.type),
            "type_id": e.type,
            "subtype": e.subtype,
            "flags": e.flags,
            "size": len(e.data),
            "encoding": "pem" if pem else ("der" if e.type <= esc.TlvType.PRIV_KEY else "raw"),
            "sha256": hashlib.sha256(e.data).hexdigest(),
        }
        if offsets is not None:
            row["offset"] = offsets[i]
        if e.type in (esc.TlvType.CA_CERT, esc.TlvType.DEV_CERT):
            row.update(_cert_row(e.data))
        elif e.type == esc.TlvType.PRIV_KEY:
            row["storage"] = esc.key_storage(e.flags)
        rows.append(row)
    return rows


def describe(data: bytes, path: Path | None = None) -> dict[str, Any]:
    decoded = esc.decode(data)
    return {
        "file": str(path) if path else None,
        "format": "esp-secure-cert",
        "size": len(data),
        "used": decoded.used,
        "integrity": {None: "absent", True: "ok", False: "mismatch"}[decoded.integrity],
        "entries": describe_entries(decoded.entries, decoded.offsets),
    }
