"""Target profiles: what a device family can hold, as the pre-flight check needs to know it.

Sizes are of the bytes *as sent* to the device, because that is what overflows a buffer:
nRF91 gets each item inside one `AT%CMNG=0,<tag>,<type>,"<content>"` command; Zephyr's
`cred` shell gets base64 text appended to one credential buffer. Several root_ca slots in one
tag travel as one concatenated PEM item on both (each keeps (sec_tag, type) unique).
Facts and sources: shared/reference/device-dialects.md; choices documented in docs/pki.md.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

from provision.bundle.model import Encoding, SlotType
from provision.errors import InputError

# The bundle format's own per-item ceiling (bundle/format.py MAX_PAYLOAD); a target with no
# tighter limit inherits it.
BUNDLE_ITEM_LIMIT = 16 * 1024

# nRF91: CONFIG_AT_HOST_CMD_MAX_LEN is 4096 bytes including the terminating NUL, and the
# AT host silently drops what overflows, so the whole command must stay at or below 4095.
NRF91_AT_COMMAND_LIMIT = 4095
# nRF91: a server certificate chain above 4 kB crashed the modem (field report).
NRF91_SERVER_CHAIN_LIMIT = 4096
NRF91_PASSWORD_LIMIT = 32
NRF91_CMNG_TYPE = {
    SlotType.ROOT_CA: 0,
    SlotType.CLIENT_CERT: 1,
    SlotType.CLIENT_KEY: 2,
    SlotType.PSK: 3,
    SlotType.PSK_IDENTITY: 4,
}

# Zephyr: CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE defaults to 1024 and the shell keeps
# one byte for a NUL, so at most 1023 characters of base64 fit: a 765-byte item.
ZEPHYR_CRED_BUF_SIZE = 1024
# Zephyr: CONFIG_TLS_MAX_CREDENTIALS_NUMBER defaults to 4 (volatile backend).
ZEPHYR_MAX_CREDENTIALS = 4


@dataclass(frozen=True)
class TargetProfile:
    name: str
    description: str
    # Largest item as sent (see sent_size); None = only the bundle limit.
    item_limit: int
    limit_what: str
    lf_only_pem: bool = False
    server_chain_limit: int | None = None
    password_limit: int | None = None
    max_items: int | None = None

    def sent_size(
        self, sec_tag: int, slot_type: SlotType, payload: bytes, password_len: int
    ) -> int:
        """Bytes the device must buffer for one item (all roots of a tag count as one)."""
        if self.name == "nrf91":
            content = len(payload) * 2 if slot_type is SlotType.PSK else len(payload)
            cmd = f'AT%CMNG=0,{sec_tag},{NRF91_CMNG_TYPE.get(slot_type, 0)},""'
            extra = len(',""') + password_len if password_len else 0
            return len(cmd) + content + extra
        if self.name == "zephyr":
            return 4 * math.ceil(len(payload) / 3)
        return len(payload)


TARGETS: dict[str, TargetProfile] = {
    "default": TargetProfile(
        name="default",
        description="no device limits beyond the bundle format",
        item_limit=BUNDLE_ITEM_LIMIT,
        limit_what="bundle item limit",
    ),
    "nrf91": TargetProfile(
        name="nrf91",
        description="nRF91 modem via AT%CMNG (one AT command per item, LF-only PEM)",
        item_limit=NRF91_AT_COMMAND_LIMIT,
        limit_what="AT%CMNG command limit (CONFIG_AT_HOST_CMD_MAX_LEN 4096 incl. NUL)",
        lf_only_pem=True,
        server_chain_limit=NRF91_SERVER_CHAIN_LIMIT,
        password_limit=NRF91_PASSWORD_LIMIT,
    ),
    "zephyr": TargetProfile(
        name="zephyr",
        description="Zephyr TLS credentials shell (base64 into a 1024-byte cred buffer)",
        item_limit=ZEPHYR_CRED_BUF_SIZE - 1,
        limit_what="Zephyr cred buffer (CONFIG_TLS_CREDENTIALS_SHELL_CRED_BUF_SIZE 1024, base64)",
        max_items=ZEPHYR_MAX_CREDENTIALS,
    ),
}


def get_target(name: str) -> TargetProfile:
    try:
        return TARGETS[name]
    except KeyError:
        raise InputError(f"unknown target {name!r} (valid: {', '.join(TARGETS)})") from None


def pem_wrap(der: bytes, label: str) -> bytes:
    """PEM text for DER bytes (64-column base64, LF), as a dialect would send it."""
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    head = f"-----BEGIN {label}-----\n".encode()
    tail = f"-----END {label}-----\n".encode()
    return head + b"\n".join(lines) + b"\n" + tail


def as_sent(slot_type: SlotType, encoding: Encoding, data: bytes) -> bytes:
    """The item as text devices take: DER certificates and keys become PEM."""
    if encoding is not Encoding.DER:
        return data
    if slot_type.is_certificate:
        return pem_wrap(data, "CERTIFICATE")
    if slot_type is SlotType.CLIENT_KEY:
        from provision.pki.keys import key_is_encrypted  # cryptography: not for `--help`

        return pem_wrap(data, "ENCRYPTED PRIVATE KEY" if key_is_encrypted(data) else "PRIVATE KEY")
    return data
