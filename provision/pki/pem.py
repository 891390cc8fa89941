"""PEM armour alone (RFC 7468): the base64 text around DER, without parsing what is inside.

Converting by armour keeps the DER byte for byte, so it works where re-serializing cannot:
an encrypted PKCS#8 key becomes DER and back without its password and without a new salt.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from provision.errors import InputError

# The labels RFC 7468 and OpenSSL use for private keys; anything else is not a key block.
PRIVATE_KEY_LABELS = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY")

_BLOCK = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\r?\n(?P<body>.*?)-----END (?P=label)-----",
    re.DOTALL,
)


@dataclass(frozen=True)
class PemBlock:
    label: str
    der: bytes = b""
    # RFC 1421 headers ("Proc-Type: 4,ENCRYPTED", "DEK-Info: ...") carry meaning the DER
    # lacks: such a block cannot become DER without losing it.
    has_headers: bool = False

    def __repr__(self) -> str:
        # The DER may be a private key: never in a repr.
        return f"PemBlock(label={self.label!r}, size={len(self.der)}, headers={self.has_headers})"


def pem_armor(label: str, der: bytes) -> bytes:
    """`der` as one PEM block: 64-character base64 lines, LF line ends (what OpenSSL writes)."""
    # Runs once per device on a factory line: binascii and one join are the cheap way.
    text = binascii.b2a_base64(der, newline=False)
    lines = b"".join(text[i : i + 64] + b"\n" for i in range(0, len(text), 64))
    tag = label.encode()
    return b"-----BEGIN " + tag + b"-----\n" + lines + b"-----END " + tag + b"-----\n"


def pem_blocks(data: bytes, source: str) -> list[PemBlock]:
    """Every PEM block in `data`, in order. A block whose base64 is damaged raises InputError
    naming `source` (never quoting the text, which may be a key); a block with RFC 1421
    headers is returned with `has_headers` and no DER."""
    blocks: list[PemBlock] = []
    for match in _BLOCK.finditer(data):
        label = match["label"].decode()
        body = match["body"]
        if b":" in body:
            blocks.append(PemBlock(label, has_headers=True))
            continue
        text = b"".join(body.split())
        try:
            der = binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            raise InputError(f"{source}: damaged PEM block {label} (bad base64)") from None
        blocks.append(PemBlock(label, der))
    return blocks


def private_key_block(data: bytes, source: str) -> PemBlock | None:
    """The one private key block of a PEM file, or None when there is none or several.

    Other blocks beside it (`openssl ecparam -genkey` writes EC PARAMETERS first) say nothing
    the key's DER does not.
    """
    keys = [b for b in pem_blocks(data, source) if b.label in PRIVATE_KEY_LABELS]
    return keys[0] if len(keys) == 1 else None
