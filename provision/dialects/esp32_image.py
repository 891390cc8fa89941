"""A credential set as an esp_secure_cert image (the esp32 dialect's planner): mapping,
what the partition refuses, describe.

One sec_tag maps to the partition: its root_ca items become CA_CERT entries (subtypes 0, 1,
... in the set's canonical order), client_cert the DEV_CERT entry, client_key the PRIV_KEY
entry (subtype 0). The partition has no place for a PSK. Entry order and serializations are
those of Espressif's configure_esp_secure_cert.py (CA, device cert, key, integrity), so an
image we pack equals the one their tool generates for the same files (tests/esp32).

A password-encrypted client_key is decrypted here, on the host: esp_secure_cert_mgr reads
keys in the clear unless the image ties the key to the chip's eFuse keys
(provision.dialects.esp32_keys: HMAC-encrypted, HMAC-derived, ECDSA peripheral, RSA DS;
`bundle pack --esp-key-storage`), so a plain partition is only as secret as the flash, i.e. it
relies on flash encryption. Other entries (DS data and context, a salt, a signature block,
user data) can be added from files as they are (`--esp-entry`).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from provision.bundle import esp_secure_cert as esc
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.dialects import esp32_keys as keys
from provision.dialects.base import Refusal
from provision.errors import InputError, PolicyError, ProvisionError
from provision.pki import esp_efuse
from provision.pki.certs import describe_certificate, load_certificate, to_der, to_pem
from provision.pki.keys import (
    describe_key,
    load_private_key,
    public_key_der,
    serialize_private_key,
)

# Key types (provision.pki.keys.describe_key) ESP-IDF's mbedTLS and the chips' peripherals
# use for TLS client authentication; other ECDSA curves parse but rarely work end to end.
_GOOD_KEYS = ("p256", "p384")


# A set is planned several times on its way to one board (the pre-flight check, the
# dialect's refusals, the write, the stored forms verify compares): each parsed the key and
# re-serialized every certificate again. The results are kept with the set, for as long as
# it lives (a weak reference: nothing of a set outlives it here).
_plans: weakref.WeakKeyDictionary[CredentialSet, dict[Any, Any]] = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()


def _planned(credentials: CredentialSet, key: Any, make: Callable[[], Any]) -> Any:
    with _plans_lock:
        plans = _plans.setdefault(credentials, {})
        if key in plans:
            return plans[key]
    value = make()
    with _plans_lock:
        plans[key] = value
    return value


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


def entries_for(
    credentials: CredentialSet,
    protection: keys.Protection = keys.PLAIN,
    extra: Sequence[esc.Entry] = (),
) -> list[esc.Entry]:
    """The TLV entries for a set that passed `preflight` (no PSK, one sec_tag), the key kept
    as `protection` says, with `extra` entries, in the order Espressif's tool writes them."""
    extra = tuple(extra)
    return list(
        _planned(
            credentials,
            ("entries", protection, extra),
            lambda: tuple(_entries_for(credentials, protection, extra)),
        )
    )


def _entries_for(
    credentials: CredentialSet, protection: keys.Protection, extra: Sequence[esc.Entry]
) -> list[esc.Entry]:
    tag = the_tag(credentials)
    entries = [
        esc.Entry(esc.TlvType.CA_CERT, i, _cert_bytes(s))
        for i, s in enumerate(credentials.roots(tag))
    ]
    cert = credentials.get(tag, SlotType.CLIENT_CERT)
    if cert is not None:
        entries.append(esc.Entry(esc.TlvType.DEV_CERT, 0, _cert_bytes(cert)))
    key = credentials.get(tag, SlotType.CLIENT_KEY)
    if protection.storage is keys.KeyStorage.HMAC_DERIVED:
        entries += keys.key_entries(protection, None, b"")
    elif key is not None:
        password = _password(credentials, tag)
        entries += keys.key_entries(protection, _key(key, password), _key_bytes(key, password))
    return keys.ordered(entries + list(extra))


def refusals(
    credentials: CredentialSet,
    partition_size: int = esc.DEFAULT_SIZE,
    protection: keys.Protection = keys.PLAIN,
    extra: Sequence[esc.Entry] = (),
) -> list[Refusal]:
    """What esp_secure_cert_mgr cannot hold or use, and the size against the partition
    (warnings: what it holds but where the user should know more, and what the chip must
    hold in eFuse for the key storage mode)."""
    extra = tuple(extra)
    return list(
        _planned(
            credentials,
            ("refusals", partition_size, protection, extra),
            lambda: tuple(_refusals(credentials, partition_size, protection, extra)),
        )
    )


def _refusals(
    credentials: CredentialSet,
    partition_size: int,
    protection: keys.Protection,
    extra: Sequence[esc.Entry],
) -> list[Refusal]:
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
        if slot.flags & SlotFlags.ENCRYPTED and protection.storage is keys.KeyStorage.PLAIN:
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
    out += _storage_refusals(credentials, protection, tags[0] if tags else None)
    out += _extra_refusals(extra)
    if any(not r.warning for r in out):
        return out
    entries = entries_for(credentials, protection, extra)
    out += _signature_refusals(entries)
    size = len(esc.encode(entries))
    if size > partition_size:
        out.append(
            Refusal(
                "esp_secure_cert.too_big",
                f"the esp_secure_cert image is {size} bytes; the partition holds "
                f"{partition_size} (0x{partition_size:x})",
            )
        )
    return out


def _storage_refusals(
    credentials: CredentialSet, p: keys.Protection, tag: int | None
) -> list[Refusal]:
    slot = credentials.get(tag, SlotType.CLIENT_KEY) if tag is not None else None
    key = _key(slot, _password(credentials, slot.sec_tag)) if slot is not None else None
    out = [Refusal(f"esp_secure_cert.{code}", text) for code, text in keys.problems(p, key)]
    if out:
        return out
    need = keys.requirement(p, key)
    if need is not None:
        out.append(Refusal("esp_secure_cert.efuse_required", need, warning=True))
    cert = credentials.get(tag, SlotType.CLIENT_CERT) if tag is not None else None
    if p.storage is keys.KeyStorage.HMAC_DERIVED and p.efuse_key and p.salt and cert:
        derived = public_key_der(esp_efuse.derived_key(p.efuse_key, p.salt))
        if public_key_der(load_certificate(cert.data, "client_cert").public_key()) != derived:
            out.append(
                Refusal(
                    "esp_secure_cert.derived_key_mismatch",
                    "hmac-derived: the client_cert's public key is not the key this eFuse key "
                    "and salt derive",
                    cert.sec_tag,
                    cert.type,
                )
            )
    return out


# What --esp-entry may add: not what the set's slots or the integrity entry become.
EXTRA_TYPES = frozenset(esc.TlvType) - {
    esc.TlvType.CA_CERT,
    esc.TlvType.DEV_CERT,
    esc.TlvType.PRIV_KEY,
    esc.TlvType.INTEGRITY,
    esc.TlvType.END,
}


def _extra_refusals(extra: Sequence[esc.Entry]) -> list[Refusal]:
    out = []
    for e in extra:
        try:
            esc.body_details(e.type, e.data)
        except ProvisionError as err:
            out.append(Refusal(err.code or "esp_secure_cert.bad_body", err.message))
    return out


def _signature_refusals(entries: Sequence[esc.Entry]) -> list[Refusal]:
    """A signature block signs the partition bytes from its offset for its length: they must
    be the entries before it, or the chip's verification fails."""
    out = []
    seen: set[tuple[int, int]] = set()
    for i, e in enumerate(entries):
        if (e.type, e.subtype) in seen:
            out.append(
                Refusal(
                    "esp_secure_cert.duplicate",
                    f"two {esc.TlvType.label_of(e.type)} entries with subtype {e.subtype}",
                )
            )
        seen.add((e.type, e.subtype))
        if e.type != esc.TlvType.SIGNATURE_BLOCK:
            continue
        signed = len(esc.encode(entries[:i], integrity=False))
        block = esc.SignatureBlock.parse(e.data)
        if (block.offset, block.length) != (0, signed):
            out.append(
                Refusal(
                    "esp_secure_cert.signature_span",
                    f"the signature block signs {block.length} bytes at offset {block.offset}; "
                    f"the image has {signed} bytes before it (sign this image's entries)",
                )
            )
    return out


def build(
    credentials: CredentialSet,
    *,
    partition_size: int = esc.DEFAULT_SIZE,
    protection: keys.Protection = keys.PLAIN,
    extra: Sequence[esc.Entry] = (),
) -> tuple[bytes, tuple[esc.Entry, ...], list[Refusal]]:
    """(image, entries, warnings); PolicyError for what the partition cannot hold."""
    found = refusals(credentials, partition_size, protection, extra)
    errors = [r for r in found if not r.warning]
    if errors:
        raise PolicyError(f"esp32: {errors[0].message}; nothing written", code=errors[0].code)
    entries = tuple(entries_for(credentials, protection, extra))
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
            if row["storage"] != "plain":
                row["encoding"] = "encrypted" if e.data else "none"
        try:
            row.update(esc.body_details(e.type, e.data))
        except ProvisionError as err:
            row["error"] = err.message
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
