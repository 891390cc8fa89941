"""What of a stored slot may be shown: the one place a SlotInfo becomes output.

A device reports a SHA-256 of every slot. For a certificate that is a fingerprint; for a
key_password or a PSK — often short, chosen by people — an unsalted SHA-256 is as good as the
secret to anyone with a wordlist, and a client_key's digest is no one's business either. So a
secret slot's digest is never shown (JSON, tables, --trace): it is only compared with what
the host holds, and the comparison is what is shown (`matches_host`: true / false, or null
when the host holds nothing to compare with).
"""

from __future__ import annotations

import hmac
from typing import Any

from provision.bundle.model import SlotType
from provision.dialects.base import SlotInfo


def digest_is_secret(slot_type: SlotType | int) -> bool:
    """A slot type whose digest must not be shown (unknown types too: a new kind of
    secret must not leak through an old host)."""
    try:
        return SlotType(slot_type).is_secret
    except ValueError:
        return True


def slot_view(slot: SlotInfo, *, held: bytes | None = None) -> dict[str, Any]:
    """`slot` as shown: sec_tag, slot, size, and sha256 (hex) for a public slot; for a
    secret one sha256 is null and `matches_host` says whether the device's digest equals
    `held`, the digest of what the host holds for that slot (null without one)."""
    view: dict[str, Any] = {"sec_tag": slot.sec_tag, "slot": slot.type.label, "size": slot.size}
    if not digest_is_secret(slot.type):
        view["sha256"] = slot.sha256.hex() if slot.sha256 else None
        return view
    view["sha256"] = None
    view["matches_host"] = (
        None if held is None or slot.sha256 is None else hmac.compare_digest(slot.sha256, held)
    )
    return view


def digest_cell(view: dict[str, Any], width: int = 16) -> str:
    """The sha256 column of a table for a slot_view()."""
    if view.get("sha256"):
        return str(view["sha256"])[:width]
    if "matches_host" not in view:
        return ""
    return {True: "(secret) matches", False: "(secret) DIFFERS", None: "(secret)"}[
        view["matches_host"]
    ]
