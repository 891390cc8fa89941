"""Signing with a key held in a PKCS#11 token (an HSM, a smartcard, SoftHSM2).

    key = load_hsm_key("pkcs11:token=factory;object=issuing-ca?pin-source=file:/run/pin")
    authority = Authority(ca_cert, key)          # issues certificates as with a key file

`load_hsm_key` returns an object that *is* a cryptography private key
(`ec.EllipticCurvePrivateKey` or `rsa.RSAPrivateKey`): cryptography's builders call its
`sign(data, algorithm)` for keys they did not create (the "custom signer" the pyca
maintainers point to for HSM and KMS keys), so every issuing path — certificates, CSRs,
CRLs — works unchanged and the private key never leaves the token. The data is hashed
here and the token signs the digest (CKM_ECDSA, CKM_RSA_PKCS over a DigestInfo): those
raw mechanisms are the ones every token has; SoftHSM2, for one, lacks CKM_ECDSA_SHA256.

URIs follow RFC 7512. The PIN never comes from the command line: `pin-source=file:…` in the
URI, else the environment variable PROVISION_PKCS11_PIN; a `pin-value` is refused. The
module comes from `module-path`, `module-name`, PROVISION_PKCS11_MODULE, or SoftHSM2's
usual places.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from provision.errors import HSMError, InputError
from provision.inputs import read_first_line

PIN_ENV = "PROVISION_PKCS11_PIN"
MODULE_ENV = "PROVISION_PKCS11_MODULE"
_MODULE_DIRS = (
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/softhsm",
    "/usr/lib/aarch64-linux-gnu/softhsm",
    "/usr/local/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
)
_PATH_ATTRS = {
    "token",
    "manufacturer",
    "serial",
    "model",
    "object",
    "id",
    "type",
    "slot-id",
    "slot-description",
    "slot-manufacturer",
    "library-manufacturer",
    "library-description",
    "library-version",
}
_QUERY_ATTRS = {"pin-source", "pin-value", "module-name", "module-path"}

# DER DigestInfo prefixes (RFC 8017 §9.2 note 1): CKM_RSA_PKCS signs DigestInfo, not a hash.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def is_pkcs11_uri(text: str | os.PathLike[str]) -> bool:
    return str(text).startswith("pkcs11:")


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of an RFC 7512 URI this tool uses. Never holds a PIN."""

    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    serial: str | None = None
    slot_id: int | None = None
    type: str | None = None
    module_path: str | None = None
    module_name: str | None = None
    pin_source: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, uri: str) -> Pkcs11Uri:
        if not is_pkcs11_uri(uri):
            raise InputError("a PKCS#11 key must be given as a pkcs11: URI")
        body = uri[len("pkcs11:") :]
        path, _, query = body.partition("?")
        values: dict[str, str] = {}
        raw_id: str | None = None
        for part, sep, allowed in ((path, ";", _PATH_ATTRS), (query, "&", _QUERY_ATTRS)):
            for item in filter(None, part.split(sep)):
                name, eq, value = item.partition("=")
                if not eq:
                    raise InputError(f"pkcs11 URI: attribute {name!r} has no value")
                if name not in allowed:
                    raise InputError(f"pkcs11 URI: unknown attribute {name!r}")
                if name == "pin-value":
                    raise InputError(
                        "pkcs11 URI: pin-value would put the PIN in shell history and process "
                        f"lists; use pin-source=file:/path or the {PIN_ENV} environment variable"
                    )
                if name == "id":
                    raw_id = value
                values[name] = unquote(value)
        if values.get("type") not in (None, "private"):
            raise InputError("pkcs11 URI: the signing key must be type=private")
        slot_id = values.get("slot-id")
        if slot_id is not None and not slot_id.isdigit():
            raise InputError("pkcs11 URI: slot-id must be a number")
        if "object" not in values and raw_id is None:
            raise InputError("pkcs11 URI: name the key with object=LABEL or id=%XX")
        return cls(
            token=values.get("token"),
            object=values.get("object"),
            # id is a byte string: unquote to bytes, not to text.
            id=_unquote_bytes(raw_id) if raw_id is not None else None,
            serial=values.get("serial"),
            slot_id=int(slot_id) if slot_id is not None else None,
            type=values.get("type"),
            module_path=values.get("module-path"),
            module_name=values.get("module-name"),
            pin_source=values.get("pin-source"),
        )


def _unquote_bytes(text: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            try:
                out.append(int(text[i + 1 : i + 3], 16))
            except ValueError:
                raise InputError("pkcs11 URI: bad %XX escape in id") from None
            i += 3
        else:
            out.extend(text[i].encode())
            i += 1
    return bytes(out)


def resolve_module(uri: Pkcs11Uri) -> str:
    """The PKCS#11 shared library to load for `uri`."""
    if uri.module_path:
        candidates = [uri.module_path]
    elif uri.module_name:
        name = uri.module_name
        files = [name] if name.endswith(".so") else [f"lib{name}.so", f"{name}.so"]
        candidates = [str(Path(d) / f) for d in _MODULE_DIRS for f in files]
    elif os.environ.get(MODULE_ENV):
        candidates = [os.environ[MODULE_ENV]]
    else:
        candidates = [str(Path(d) / "libsofthsm2.so") for d in _MODULE_DIRS]
    for path in candidates:
        if Path(path).is_file():
            return path
    raise HSMError(
        f"PKCS#11 module not found (looked for {', '.join(candidates[:3])}"
        f"{', …' if len(candidates) > 3 else ''}); set module-path in the URI or {MODULE_ENV}"
    )


def resolve_pin(uri: Pkcs11Uri, pin_env: str = PIN_ENV) -> str | None:
    """The user PIN from `pin-source` (a file) or `pin_env`; None if neither is set."""
    if uri.pin_source:
        source = uri.pin_source.removeprefix("file://").removeprefix("file:")
        try:
            return read_first_line(source, "pin-source")
        except InputError as err:
            raise HSMError(err.message) from None
    return os.environ.get(pin_env) or None


# -- sessions ---------------------------------------------------------------------------

# PKCS#11 logins are per process and token: a second login fails with
# CKR_USER_ALREADY_LOGGED_IN, so every key on one token shares one session. Sessions are not
# safe for concurrent use; the lock makes signing from several line threads take turns.
_sessions: dict[tuple[str, str], tuple[Any, threading.Lock]] = {}
_sessions_lock = threading.Lock()


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise HSMError(
            "PKCS#11 support needs python-pkcs11: pip install 'provision[hsm]'"
        ) from None
    return pkcs11


def _open_session(uri: Pkcs11Uri, pin_env: str, rw: bool = False) -> tuple[Any, threading.Lock]:
    pkcs11 = _pkcs11()
    module = resolve_module(uri)
    key = (module, f"{uri.token}|{uri.serial}|{uri.slot_id}")
    with _sessions_lock:
        if key in _sessions:
            return _sessions[key]
        pin = resolve_pin(uri, pin_env)
        try:
            lib = pkcs11.lib(module)
            token = _find_token(lib, uri)
            session = token.open(user_pin=pin, rw=rw)
        except pkcs11.exceptions.PinIncorrect:
            raise HSMError(f"token {uri.token or '?'}: PIN incorrect") from None
        except pkcs11.exceptions.PinLocked:
            raise HSMError(f"token {uri.token or '?'}: PIN locked") from None
        except pkcs11.exceptions.PKCS11Error as err:
            raise HSMError(
                f"token {uri.token or '?'}: cannot open a session ({_name(err)})"
            ) from None
        _sessions[key] = (session, threading.Lock())
        return _sessions[key]


def _find_token(lib: Any, uri: Pkcs11Uri) -> Any:
    tokens = []
    for slot in lib.get_slots(token_present=True):
        if uri.slot_id is not None and slot.slot_id != uri.slot_id:
            continue
        token = slot.get_token()
        if uri.token is not None and token.label.rstrip() != uri.token:
            continue
        if uri.serial is not None and token.serial.decode().strip() != uri.serial:
            continue
        tokens.append(token)
    if not tokens:
        raise HSMError(f"no PKCS#11 token matches {_describe_token(uri)}")
    if len(tokens) > 1:
        raise HSMError(f"{len(tokens)} tokens match {_describe_token(uri)}: add token= or serial=")
    return tokens[0]


def _describe_token(uri: Pkcs11Uri) -> str:
    parts = [f"token={uri.token}"] if uri.token else []
    if uri.serial:
        parts.append(f"serial={uri.serial}")
    if uri.slot_id is not None:
        parts.append(f"slot-id={uri.slot_id}")
    return ";".join(parts) or "the URI (any token)"


def _describe_key(uri: Pkcs11Uri) -> str:
    parts = []
    if uri.object:
        parts.append(f"object={uri.object}")
    if uri.id is not None:
        parts.append(f"id={uri.id.hex()}")
    return ";".join(parts)


def _name(err: Exception) -> str:
    return type(err).__name__


def close_sessions() -> None:
    """Close every cached session (tests, and before a token is removed)."""
    with _sessions_lock:
        for session, lock in _sessions.values():
            with lock:
                session.close()
        _sessions.clear()


def _find_objects(session: Any, uri: Pkcs11Uri, object_class: Any) -> list[Any]:
    pkcs11 = _pkcs11()
    attrs: dict[Any, Any] = {pkcs11.Attribute.CLASS: object_class}
    if uri.object is not None:
        attrs[pkcs11.Attribute.LABEL] = uri.object
    if uri.id is not None:
        attrs[pkcs11.Attribute.ID] = uri.id
    return list(session.get_objects(attrs))


# -- the key ----------------------------------------------------------------------------


class _Pkcs11Key:
    """What the EC and RSA wrappers share: the token object and a locked sign call."""

    def _setup(self, handle: Any, session_lock: threading.Lock, public: Any, label: str) -> None:
        self._handle = handle
        self._lock = session_lock
        self._public = public
        self.label = label

    def public_key(self) -> Any:
        return self._public

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def _sign_raw(self, mechanism: Any, data: bytes) -> bytes:
        pkcs11 = _pkcs11()
        try:
            with self._lock:
                return self._handle.sign(data, mechanism=mechanism)
        except pkcs11.exceptions.PKCS11Error as err:
            raise HSMError(f"{self.label}: the token refused to sign ({_name(err)})") from None

    def private_numbers(self) -> Any:
        raise HSMError(f"{self.label}: a key in a token cannot be exported")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise HSMError(f"{self.label}: a key in a token cannot be exported")

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label}>"


def _digest(data: bytes | bytearray | memoryview, algorithm: Any) -> tuple[str, bytes]:
    if isinstance(algorithm, Prehashed):
        name = algorithm._algorithm.name  # the hash the caller already applied
        return name, bytes(data)
    name = algorithm.name
    if name not in _DIGEST_INFO:
        raise HSMError(f"signing with {name} is not supported for token keys")
    return name, hashlib.new(name, data).digest()


class HsmEcKey(_Pkcs11Key, ec.EllipticCurvePrivateKey):
    """An EC private key in a token. Signatures come back DER-encoded, as from cryptography."""

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise HSMError(f"{self.label}: only ECDSA signatures are supported")
        _, digest = _digest(data, signature_algorithm.algorithm)
        raw = self._sign_raw(_pkcs11().Mechanism.ECDSA, digest)
        half = len(raw) // 2
        # PKCS#11 returns r||s; X.509 wants the DER SEQUENCE cryptography would have made.
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise HSMError(f"{self.label}: key agreement with a token key is not supported")


class HsmRsaKey(_Pkcs11Key, rsa.RSAPrivateKey):
    """An RSA private key in a token: PKCS#1 v1.5 signatures."""

    def sign(self, data: bytes, padding_: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        if not isinstance(padding_, padding.PKCS1v15):
            raise HSMError(f"{self.label}: only PKCS#1 v1.5 RSA signatures are supported")
        name, digest = _digest(data, algorithm)
        return self._sign_raw(_pkcs11().Mechanism.RSA_PKCS, _DIGEST_INFO[name] + digest)

    def decrypt(self, ciphertext: bytes, padding_: padding.AsymmetricPadding) -> bytes:
        raise HSMError(f"{self.label}: decryption with a token key is not supported")


def load_hsm_key(
    uri_text: str,
    *,
    pin_env: str = PIN_ENV,
    public_key: Any | None = None,
) -> HsmEcKey | HsmRsaKey:
    """The private key named by `uri_text`, as a cryptography private key that signs in the
    token. The public half comes from the token's public key object (same label/id) or,
    if the token holds none, from `public_key` (e.g. the CA certificate's)."""
    pkcs11 = _pkcs11()
    uri = Pkcs11Uri.parse(uri_text)
    session, lock = _open_session(uri, pin_env)
    ObjectClass = pkcs11.ObjectClass
    with lock:
        try:
            found = _find_objects(session, uri, ObjectClass.PRIVATE_KEY)
            if not found:
                raise HSMError(
                    f"no private key {_describe_key(uri)} on token {uri.token or '?'}"
                    + ("" if resolve_pin(uri, pin_env) else f" (no PIN given: set {pin_env})")
                )
            if len(found) > 1:
                raise HSMError(f"{len(found)} private keys match {_describe_key(uri)}: add id=")
            handle = found[0]
            publics = _find_objects(session, uri, ObjectClass.PUBLIC_KEY)
            # The token's own public key wins: a certificate given by mistake for another
            # key must fail the CA's key check, not yield certificates that never verify.
            if len(publics) == 1:
                public_key = _public_from_token(publics[0])
        except pkcs11.exceptions.PKCS11Error as err:
            raise HSMError(f"token {uri.token or '?'}: lookup failed ({_name(err)})") from None
    if public_key is None:
        raise HSMError(
            f"{_describe_key(uri)}: the token has no matching public key; give the CA certificate"
        )
    label = f"pkcs11:{_describe_key(uri)}"
    key: HsmEcKey | HsmRsaKey
    if handle.key_type == pkcs11.KeyType.EC and isinstance(public_key, ec.EllipticCurvePublicKey):
        key = HsmEcKey()
    elif handle.key_type == pkcs11.KeyType.RSA and isinstance(public_key, rsa.RSAPublicKey):
        key = HsmRsaKey()
    else:
        raise HSMError(f"{label}: key type {handle.key_type.name} is not supported (EC or RSA)")
    key._setup(handle, lock, public_key, label)
    return key


def _public_from_token(obj: Any) -> Any:
    pkcs11 = _pkcs11()
    if obj.key_type == pkcs11.KeyType.EC:
        from pkcs11.util.ec import encode_ec_public_key

        return serialization.load_der_public_key(encode_ec_public_key(obj))
    if obj.key_type == pkcs11.KeyType.RSA:
        from pkcs11.util.rsa import encode_rsa_public_key

        # A PKCS#1 RSAPublicKey: cryptography's DER loader accepts it as well as SPKI.
        return serialization.load_der_public_key(encode_rsa_public_key(obj))
    raise HSMError(f"public key type {obj.key_type.name} is not supported")


def generate_hsm_key(uri_text: str, key_type: str = "p256", *, pin_env: str = PIN_ENV) -> None:
    """Generate a non-extractable key pair in the token, labelled and id'd as the URI says.

    For setting up a token (and the tests' SoftHSM2 token); production HSMs usually have
    their own key ceremony tools.
    """
    pkcs11 = _pkcs11()
    uri = Pkcs11Uri.parse(uri_text)
    if uri.object is None or uri.id is None:
        raise InputError("pkcs11 URI for a new key needs both object= and id=")
    pin = resolve_pin(uri, pin_env)
    if pin is None:
        raise HSMError(f"no PIN: set pin-source in the URI or {pin_env}")
    module = resolve_module(uri)
    Attribute = pkcs11.Attribute
    template = {Attribute.TOKEN: True, Attribute.LABEL: uri.object, Attribute.ID: uri.id}
    private = {**template, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
    close_sessions()
    try:
        token = _find_token(pkcs11.lib(module), uri)
        with token.open(user_pin=pin, rw=True) as session:
            if key_type in ("p256", "p384"):
                from pkcs11.util.ec import encode_named_curve_parameters

                curve = {"p256": "secp256r1", "p384": "secp384r1"}[key_type]
                params = session.create_domain_parameters(
                    pkcs11.KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)},
                    local=True,
                )
                params.generate_keypair(
                    store=True, public_template=template, private_template=private
                )
            elif key_type in ("rsa2048", "rsa3072"):
                bits = int(key_type[3:])
                session.generate_keypair(
                    pkcs11.KeyType.RSA,
                    bits,
                    store=True,
                    public_template=template,
                    private_template=private,
                )
            else:
                raise InputError(f"unsupported token key type {key_type!r} (p256, p384, rsa2048)")
    except pkcs11.exceptions.PKCS11Error as err:
        raise HSMError(f"token {uri.token or '?'}: key generation failed ({_name(err)})") from None


__all__ = [
    "MODULE_ENV",
    "PIN_ENV",
    "HsmEcKey",
    "HsmRsaKey",
    "Pkcs11Uri",
    "close_sessions",
    "generate_hsm_key",
    "is_pkcs11_uri",
    "load_hsm_key",
]
