"""The nRF91 modem's signed tokens: the COSE_Sign1 of `%KEYGEN` and the `%ATTESTTOKEN` message.

Sans-IO and pure: text in, values out (and values in, bytes out for the simulator). The one
definition of these formats in the project; the simulator builds with it, the host parses.

Sources (docs/dialects.md): Nordic's AT command reference (%KEYGEN, %ATTESTTOKEN), and the
parser Nordic ships in nrfcloud-utils (`modem_credentials_parser.parse_cose`,
`parse_attesttoken_output`) with the real modem outputs in its tests:

    %KEYGEN: "<b64url(CSR or public key DER)>.<b64url(COSE_Sign1)>"
    COSE_Sign1 = 18([ bstr({1: -7}),            # protected: alg ES256
                      {4: bstr(cbor(-2))},      # unprotected: kid, the device identity key
                      bstr(payload),
                      bstr(64-byte r || s) ])
    payload    = 55799([ 9 (CSR) | 8 (public key), uuid (16 bytes),
                         bstr(cbor(sec_tag as int32)), SHA-256(body DER), nonce (16 bytes) ])

    %ATTESTTOKEN: "<b64url(message)>.<b64url(COSE_Sign1 with a nil payload)>"
    message    = 55799([ 1, uuid (16 bytes), device type, firmware uuid (16 bytes),
                         nonce (16 bytes) ])

The signature is COSE's (RFC 9052 section 4.4) over ["Signature1", protected, h'', payload];
for the attestation token, whose COSE payload is nil (detached), over the message bytes.
"""

from __future__ import annotations

import base64
import hashlib
import uuid as uuid_mod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cbor2

from provision.errors import DeviceError

SELF_DESCRIBED_TAG = 55799  # RFC 8949 3.4.6: the magic d9d9f7 in front of the modem's CBOR
COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
ALG_ES256 = -7
# Key ids as nrfcloud-utils names them (header_key_type_dict).
KEY_IDS = {
    -2: "identity_key",
    -4: "nordic_base_production_key",
    -5: "nordic_base_rd_key",
}
KID_IDENTITY_KEY = -2
MSG_IDENTITY = 1  # "Device identity message v1" (%ATTESTTOKEN)
MSG_PUBLIC_KEY = 8  # "pubkey_msg_v2" (%KEYGEN <resp> 1)
MSG_CSR = 9  # "CSR_msg_v1" (%KEYGEN <resp> 0)
MESSAGE_TYPES = {
    MSG_IDENTITY: "device identity",
    MSG_PUBLIC_KEY: "public key",
    MSG_CSR: "CSR",
}
# nrfcloud-utils device_type_dict; the simulator's model string picks one.
DEVICE_TYPES = {
    1: "nRF9160 SIAA",
    2: "nRF9160 SIBA",
    3: "NRF9160 SIAA",
    4: "nRF9161 LACA",
    5: "nRF9131 LACA",
    6: "nRF9151 LACA",
}
NONCE_SIZE = 16


@dataclass(frozen=True)
class CoseSign1:
    protected: bytes  # the serialized protected header, as signed
    alg: int | None
    kid: int | None  # the key id, decoded (-2: the device identity key)
    payload: bytes | None
    signature: bytes

    @property
    def kid_name(self) -> str | None:
        return None if self.kid is None else KEY_IDS.get(self.kid, f"key id {self.kid}")

    def to_be_signed(self, detached: bytes | None = None) -> bytes:
        payload = self.payload if self.payload is not None else detached
        return sig_structure(self.protected, payload or b"")


@dataclass(frozen=True)
class KeygenAttestation:
    """The signed part of a %KEYGEN reply."""

    message_type: int
    device_uuid: str  # 8-4-4-4-12, lower case
    sec_tag: int
    body_sha256: bytes  # of the CSR (or public key) DER in the same reply
    nonce: bytes
    cose: CoseSign1

    def matches(self, body_der: bytes) -> bool:
        return hashlib.sha256(body_der).digest() == self.body_sha256

    def to_json(self) -> dict[str, object]:
        return {
            "message": MESSAGE_TYPES.get(self.message_type, str(self.message_type)),
            "device_uuid": self.device_uuid,
            "sec_tag": self.sec_tag,
            "body_sha256": self.body_sha256.hex(),
            "nonce": self.nonce.hex(),
            "alg": self.cose.alg,
            "kid": self.cose.kid_name,
        }


@dataclass(frozen=True)
class IdentityToken:
    """A decoded %ATTESTTOKEN."""

    message_type: int
    device_uuid: str
    device_type: int
    firmware_uuid: str
    nonce: bytes
    message: bytes  # the CBOR bytes the signature covers
    cose: CoseSign1

    @property
    def device_type_name(self) -> str:
        return DEVICE_TYPES.get(self.device_type, f"unknown ({self.device_type})")

    def to_json(self) -> dict[str, object]:
        return {
            "message": MESSAGE_TYPES.get(self.message_type, str(self.message_type)),
            "device_uuid": self.device_uuid,
            "device_type": self.device_type_name,
            "firmware_uuid": self.firmware_uuid,
            "nonce": self.nonce.hex(),
            "alg": self.cose.alg,
            "kid": self.cose.kid_name,
        }


# --- building (the simulated modem) ---------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def _sec_tag_cbor(sec_tag: int) -> bytes:
    # The modem encodes the tag as a 32-bit signed integer: reserved tags come out negative
    # (nrfcloud-utils converts them back).
    return cbor2.dumps(sec_tag - (1 << 32) if sec_tag >= 1 << 31 else sec_tag)


def keygen_payload(
    message_type: int, device_uuid: str, sec_tag: int, body_der: bytes, nonce: bytes
) -> bytes:
    fields = [
        message_type,
        uuid_mod.UUID(device_uuid).bytes,
        _sec_tag_cbor(sec_tag),
        hashlib.sha256(body_der).digest(),
        nonce,
    ]
    return cbor2.dumps(cbor2.CBORTag(SELF_DESCRIBED_TAG, fields))


def identity_message(device_uuid: str, device_type: int, firmware_uuid: str, nonce: bytes) -> bytes:
    fields = [
        MSG_IDENTITY,
        uuid_mod.UUID(device_uuid).bytes,
        device_type,
        uuid_mod.UUID(firmware_uuid).bytes,
        nonce,
    ]
    return cbor2.dumps(cbor2.CBORTag(SELF_DESCRIBED_TAG, fields))


def cose_sign1(
    payload: bytes | None,
    sign: Callable[[bytes], bytes],
    *,
    detached: bytes | None = None,
    kid: int = KID_IDENTITY_KEY,
) -> bytes:
    """COSE_Sign1 over `payload` (or, with payload None, over the detached bytes)."""
    protected = cbor2.dumps({HEADER_ALG: ALG_ES256})
    signature = sign(sig_structure(protected, payload if payload is not None else detached or b""))
    unprotected = {HEADER_KID: cbor2.dumps(kid)}
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, unprotected, payload, signature]))


# --- parsing (the host) ----------------------------------------------------------------------


def b64url_decode(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise DeviceError(f"{what} is not base64url", code="at.attestation_malformed") from None


def _loads(data: bytes, what: str) -> object:
    try:
        return cbor2.loads(data)
    except Exception:  # cbor2 raises several decoder errors, and ValueError/TypeError
        raise DeviceError(f"{what} is not valid CBOR", code="at.attestation_malformed") from None


def _untag(value: object) -> object:
    return value.value if isinstance(value, cbor2.CBORTag) else value


def _uuid(value: object, what: str) -> str:
    if not isinstance(value, bytes) or len(value) != 16:
        raise DeviceError(
            f"{what}: the device UUID is not 16 bytes", code="at.attestation_malformed"
        )
    return str(uuid_mod.UUID(bytes=value))


def parse_cose_sign1(data: bytes, what: str = "COSE_Sign1") -> CoseSign1:
    obj = _loads(data, what)
    if not isinstance(obj, cbor2.CBORTag) or obj.tag != COSE_SIGN1_TAG:
        raise DeviceError(
            f"{what}: not a COSE_Sign1 (CBOR tag 18)", code="at.attestation_malformed"
        )
    parts = obj.value
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise DeviceError(f"{what}: a COSE_Sign1 has four parts", code="at.attestation_malformed")
    protected, unprotected, payload, signature = parts
    if not isinstance(protected, bytes) or not isinstance(signature, bytes):
        raise DeviceError(
            f"{what}: malformed protected header or signature", code="at.attestation_malformed"
        )
    if payload is not None and not isinstance(payload, bytes):
        raise DeviceError(
            f"{what}: the payload is not a byte string", code="at.attestation_malformed"
        )
    header = _loads(protected, f"{what} protected header") if protected else {}
    # cbor2 decodes maps as dict or (newer) frozendict: any Mapping.
    alg = header.get(HEADER_ALG) if isinstance(header, Mapping) else None
    kid = None
    raw_kid = unprotected.get(HEADER_KID) if isinstance(unprotected, Mapping) else None
    if isinstance(raw_kid, bytes):
        decoded = _loads(raw_kid, f"{what} key id")
        kid = decoded if isinstance(decoded, int) else None
    return CoseSign1(protected, alg, kid, payload, signature)


def parse_keygen_attestation(cose_b64url: str) -> KeygenAttestation | None:
    """The COSE part of a %KEYGEN reply → its attestation; None if there is no payload."""
    what = "%KEYGEN COSE_Sign1"
    cose = parse_cose_sign1(b64url_decode(cose_b64url, what), what)
    if not cose.payload:
        return None
    fields = _untag(_loads(cose.payload, f"{what} payload"))
    if not isinstance(fields, list | tuple) or len(fields) < 5:
        raise DeviceError(
            f"{what}: the payload is not a five-element array", code="at.attestation_malformed"
        )
    message_type, raw_uuid, raw_tag, digest, nonce = fields[:5]
    sec_tag = _loads(raw_tag, f"{what} sec_tag") if isinstance(raw_tag, bytes) else None
    if not isinstance(message_type, int) or not isinstance(sec_tag, int):
        raise DeviceError(
            f"{what}: malformed message type or sec_tag", code="at.attestation_malformed"
        )
    if not isinstance(digest, bytes) or len(digest) != 32 or not isinstance(nonce, bytes):
        raise DeviceError(f"{what}: malformed digest or nonce", code="at.attestation_malformed")
    return KeygenAttestation(
        message_type, _uuid(raw_uuid, what), sec_tag & 0xFFFFFFFF, digest, nonce, cose
    )


def split_token(text: str, what: str) -> tuple[str, str]:
    body, sep, cose = text.strip().strip('"').partition(".")
    if not body or not sep:
        raise DeviceError(
            f"{what}: expected <base64url>.<base64url>", code="at.attestation_malformed"
        )
    return body, cose


def parse_attest_token(text: str) -> IdentityToken:
    """`<b64url(message)>.<b64url(COSE_Sign1)>` (the quoted part of %ATTESTTOKEN:)."""
    what = "%ATTESTTOKEN"
    body_text, cose_text = split_token(text, what)
    message = b64url_decode(body_text, what)
    fields = _untag(_loads(message, f"{what} message"))
    if not isinstance(fields, list | tuple) or len(fields) < 4:
        raise DeviceError(
            f"{what}: the message is not an array of at least four elements",
            code="at.attestation_malformed",
        )
    message_type, raw_uuid, device_type, raw_fw = fields[:4]
    nonce = fields[4] if len(fields) > 4 and isinstance(fields[4], bytes) else b""
    if not isinstance(message_type, int) or not isinstance(device_type, int):
        raise DeviceError(
            f"{what}: malformed message type or device type", code="at.attestation_malformed"
        )
    cose = parse_cose_sign1(b64url_decode(cose_text, what), f"{what} COSE_Sign1")
    return IdentityToken(
        message_type,
        _uuid(raw_uuid, what),
        device_type,
        _uuid(raw_fw, f"{what} firmware"),
        nonce,
        message,
        cose,
    )


def device_type_for(model: str) -> int:
    """The %ATTESTTOKEN device type of a +CGMM model string ("nRF9151-LACA" → 6)."""
    wanted = model.replace("-", " ").lower()
    for number, name in DEVICE_TYPES.items():
        if name.lower() == wanted:
            return number
    return 0


# --- host checks -----------------------------------------------------------------------------


def check_keygen_reply(line: str, body_der: bytes, sec_tag: int) -> KeygenAttestation | None:
    """The attestation of a `%KEYGEN: "<body>.<cose>"` line, checked against the body it came
    with; None when the modem sent no attestation payload. A digest or sec_tag that does not
    match means the reply was corrupted or is not this key's: DeviceError."""
    quoted = line.split('"')
    _, cose_text = split_token(quoted[1] if len(quoted) > 1 else line, "%KEYGEN")
    if not cose_text:
        return None
    attestation = parse_keygen_attestation(cose_text)
    if attestation is None:
        return None
    if not attestation.matches(body_der):
        raise DeviceError(
            "%KEYGEN: the signed attestation's SHA-256 does not match the CSR it came with",
            code="at.keygen_attestation",
        )
    if attestation.sec_tag != sec_tag:
        raise DeviceError(
            f"%KEYGEN: the signed attestation names sec_tag {attestation.sec_tag}, not {sec_tag}",
            code="at.keygen_attestation",
        )
    return attestation


# What a host can say about the signature: the device identity public key that verifies it
# is Nordic's (nRF Cloud's identity service checks it), not something the modem hands out.
SIGNATURE_NOT_CHECKED = "not checked here: nRF Cloud's identity service holds the device key"
