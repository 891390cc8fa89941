"""Bundles and files: read credential files into a CredentialSet, pack, inspect, verify, unpack.

This is the file side of `provision.bundle`; format.py stays pure (bytes in, bytes out).
Certificates and keys are parsed by provision.pki, findings come from provision.check.
Every output is written all-or-nothing (temp file + rename); a bundle or unpacked file that
holds a secret is mode 0600. No message, table or JSON ever holds key or password bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from provision.bundle import format as fmt
from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.bundle.spec import (
    PackSources,
    SecretSource,
    TagSources,
    dump_spec,
)
from provision.check import Finding, check_credential_set, refuse_errors
from provision.errors import BundleError, InputError, OverwriteError, PolicyError
from provision.pki.certs import cert_der, cert_pem, load_certificates, summarize
from provision.pki.files import KEY_MODE, PUBLIC_MODE, OutputFile, read_input, write_outputs
from provision.pki.keys import key_is_encrypted, load_private_key, serialize_private_key
from provision.pki.pem import pem_armor, private_key_block
from provision.pki.signing import key_id, load_public_key, sign_digest, verify_digest

# Largest file that can be a bundle: every record at its limit, a signature, the longest id.
MAX_BUNDLE_SIZE = (
    fmt.MIN_BUNDLE
    + fmt.MAX_DEVICE_ID
    + fmt.KEY_ID_SIZE
    + fmt.SIGNATURE_SIZE
    + fmt.MAX_RECORDS * (fmt.RECORD_OVERHEAD + fmt.MAX_PAYLOAD)
)
# A credential input larger than this cannot become a bundle item in any encoding.
MAX_INPUT_FILE = 4 * fmt.MAX_PAYLOAD

AskPassword = Callable[[str], bytes]


@dataclass(frozen=True)
class SignerSource:
    """The line's bundle signing key (ECDSA P-256) and where its password comes from."""

    key: Path
    password: SecretSource | None = None


@dataclass(frozen=True)
class PackResult:
    path: Path
    size: int
    digest: bytes
    key_id: bytes | None
    credentials: CredentialSet
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class VerifyResult:
    path: Path
    decoded: fmt.DecodedBundle
    signature: str  # "valid", "not signed", "present, not checked"
    findings: tuple[Finding, ...]


# --- reading inputs ---------------------------------------------------------------------


def read_secret(source: SecretSource, what: str) -> bytes:
    """A password or a hex PSK from a file (first line) or an environment variable."""
    if source.file is not None:
        raw = _read_file(source.file, what)
        try:
            lines = raw.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputError(f"{source.file}: {what} file is not UTF-8 text") from None
        value = lines[0].strip() if source.hex and lines else (lines[0] if lines else "")
        if not value:
            raise InputError(f"{source.file}: {what} file is empty")
    else:
        assert source.env is not None
        value = os.environ.get(source.env, "")
        if source.hex:
            value = value.strip()
        if not value:
            raise InputError(f"environment variable {source.env} ({what}) is not set or empty")
    if not source.hex:
        return value.encode()
    try:
        data = bytes.fromhex(value)
    except ValueError:
        # Never echo the value: it is a secret.
        raise InputError(f"{source.describe()}: {what} is not hex") from None
    if not data:
        raise InputError(f"{source.describe()}: {what} is empty")
    return data


def _read_file(path: Path, what: str, limit: int = MAX_INPUT_FILE) -> bytes:
    return read_input(path, what, limit=limit)


def _cert_items(path: Path, slot: SlotType, encoding: str) -> list[tuple[bytes, Encoding]]:
    """One item per certificate for root_ca; one item (leaf + chain) for client_cert."""
    data = _read_file(path, "certificate")
    certs = load_certificates(data, str(path))
    is_pem = b"-----BEGIN " in data
    # compact: DER holds one certificate, so a client_cert chain stays PEM (as given).
    as_pem = (
        encoding == "pem"
        or (encoding == "keep" and is_pem)
        or (encoding == "compact" and slot is SlotType.CLIENT_CERT and len(certs) > 1)
    )
    if slot is SlotType.ROOT_CA:
        if as_pem:
            return [(cert_pem(c), Encoding.PEM) for c in certs]
        return [(cert_der(c), Encoding.DER) for c in certs]
    if not as_pem and len(certs) > 1:
        raise InputError(
            f"{path}: client_cert holds {len(certs)} certificates (a chain): "
            "use --encoding pem or compact, DER holds one certificate"
        )
    if as_pem:
        return [(b"".join(cert_pem(c) for c in certs), Encoding.PEM)]
    return [(cert_der(certs[0]), Encoding.DER)]


def _plain_key_der(data: bytes, key: Any, source: str) -> bytes:
    """A plain key as DER for compact: the DER inside its PEM block, byte for byte (same
    structure, PKCS#8, SEC1 or PKCS#1); PKCS#8 DER when the file is not one clean block."""
    block = private_key_block(data, source)
    if block is not None and not block.has_headers and block.label != "ENCRYPTED PRIVATE KEY":
        try:
            load_private_key(block.der, None, source)
        except InputError:
            pass  # our armour reading disagrees with cryptography's: re-serialize instead
        else:
            return block.der
    return serialize_private_key(key, encoding="der")


def _encrypted_key(path: Path, data: bytes, is_pem: bool, encoding: str) -> tuple[bytes, Encoding]:
    """An encrypted key converted by its armour only: re-encrypting would need a new random
    salt, so the bytes would change on every run; the armour holds the same DER."""
    if not is_pem:  # PKCS#8 EncryptedPrivateKeyInfo DER
        if encoding == "pem":
            return pem_armor("ENCRYPTED PRIVATE KEY", data), Encoding.PEM
        return data, Encoding.DER
    if encoding in ("keep", "pem"):
        return data, Encoding.PEM
    block = private_key_block(data, str(path))
    if block is not None and block.label == "ENCRYPTED PRIVATE KEY" and not block.has_headers:
        return block.der, Encoding.DER
    if encoding == "compact":
        return data, Encoding.PEM  # legacy OpenSSL encryption: PEM is its only form
    raise InputError(
        f"{path}: a legacy OpenSSL-encrypted PEM key (Proc-Type: 4,ENCRYPTED) has no DER "
        "form; convert it to PKCS#8 (openssl pkcs8 -topk8) or use --encoding compact or keep"
    )


def _key_item(
    path: Path,
    encoding: str,
    password_source: SecretSource | None,
    ask_password: AskPassword | None,
) -> tuple[bytes, Encoding, SlotFlags, bytes | None]:
    data = _read_file(path, "private key")
    is_pem = b"-----BEGIN " in data
    if not key_is_encrypted(data):
        key = load_private_key(data, None, str(path))  # it must at least be a key
        if encoding == "keep":
            return data, Encoding.PEM if is_pem else Encoding.DER, SlotFlags.NONE, None
        if encoding == "compact":
            out = _plain_key_der(data, key, str(path)) if is_pem else data
            return out, Encoding.DER, SlotFlags.NONE, None
        # Plain keys are normalized to PKCS#8 in the asked encoding (deterministic).
        out = serialize_private_key(key, encoding="pem" if encoding == "pem" else "der")
        return out, Encoding.PEM if encoding == "pem" else Encoding.DER, SlotFlags.NONE, None
    if password_source is not None:
        password = read_secret(password_source, "key password")
    elif ask_password is not None:
        password = ask_password(f"Password for {path}")
    else:
        raise InputError(
            f"{path}: private key is encrypted: give --key-password-file or "
            "--key-password-env (key_password in a spec file)",
            code="key.password_missing",
        )
    load_private_key(data, password, str(path))  # wrong password: InputError naming the file
    out, enc = _encrypted_key(path, data, is_pem, encoding)
    return out, enc, SlotFlags.ENCRYPTED, password


def _psk_identity(value: bytes | Path) -> bytes:
    if isinstance(value, Path):
        data = _read_file(value, "psk_identity").rstrip(b"\r\n")
        if not data:
            raise InputError(f"{value}: psk_identity file is empty")
        return data
    return value


def _check_item_size(data: bytes, what: str) -> None:
    if len(data) > fmt.MAX_PAYLOAD:
        raise PolicyError(
            f"{what} is {len(data)} bytes (a bundle item holds at most {fmt.MAX_PAYLOAD})"
        )


def _tag_slots(tag: TagSources, encoding: str, ask_password: AskPassword | None) -> list[Slot]:
    t = tag.sec_tag
    slots: list[Slot] = []
    for path in tag.root_ca:
        for data, enc in _cert_items(path, SlotType.ROOT_CA, encoding):
            _check_item_size(data, f"{path}: root_ca")
            root = Slot(t, SlotType.ROOT_CA, enc, data)
            if root in slots:
                raise InputError(
                    f"{path}: duplicate slot root_ca in sec_tag {t} (this certificate is "
                    "given twice)"
                )
            slots.append(root)
    if tag.client_cert is not None:
        [(data, enc)] = _cert_items(tag.client_cert, SlotType.CLIENT_CERT, encoding)
        _check_item_size(data, f"{tag.client_cert}: client_cert")
        slots.append(Slot(t, SlotType.CLIENT_CERT, enc, data))
    if tag.client_key is not None:
        data, enc, flags, password = _key_item(
            tag.client_key, encoding, tag.key_password, ask_password
        )
        _check_item_size(data, f"{tag.client_key}: client_key")
        slots.append(Slot(t, SlotType.CLIENT_KEY, enc, data, flags))
        if password is not None:
            _check_item_size(password, f"sec_tag {t}: key_password")
            slots.append(Slot(t, SlotType.KEY_PASSWORD, Encoding.RAW, password))
    elif tag.key_password is not None:
        raise InputError(f"sec_tag {t}: a key_password was given without a client_key")
    if tag.psk is not None:
        data = read_secret(tag.psk, "psk")
        _check_item_size(data, f"sec_tag {t}: psk")
        slots.append(Slot(t, SlotType.PSK, Encoding.RAW, data))
    if tag.psk_identity is not None:
        data = _psk_identity(tag.psk_identity)
        _check_item_size(data, f"sec_tag {t}: psk_identity")
        slots.append(Slot(t, SlotType.PSK_IDENTITY, Encoding.RAW, data))
    return slots


def read_credentials(
    sources: PackSources, *, ask_password: AskPassword | None = None
) -> CredentialSet:
    """Read and parse every input: certificates must parse, keys must open.

    Raises InputError naming the file for anything unreadable, PolicyError for limits.
    """
    if not sources.tags or all(t.empty for t in sources.tags):
        raise InputError(f"{sources.origin}: nothing to pack (no slots given)")
    if sources.device_id is not None:
        # The CA code (certificate templates, profiles) is loaded only for a device id.
        from provision.pki.authority import validate_device_id

        validate_device_id(sources.device_id)
    slots: list[Slot] = []
    for tag in sources.tags:
        slots.extend(_tag_slots(tag, sources.encoding, ask_password))
    if len(slots) > fmt.MAX_RECORDS:
        raise PolicyError(
            f"{sources.origin}: {len(slots)} items (a bundle holds at most {fmt.MAX_RECORDS})"
        )
    return CredentialSet.of(slots, device_id=sources.device_id)


def load_signer(signer: SignerSource, ask_password: AskPassword | None = None) -> Any:
    """The signing key, its password from `signer.password`, else `ask_password`."""
    data = _read_file(signer.key, "signing key")
    password = None
    if key_is_encrypted(data):
        if signer.password is not None:
            password = read_secret(signer.password, "signing key password")
        elif ask_password is not None:
            password = ask_password(f"Password for {signer.key}")
        else:
            raise InputError(
                f"{signer.key}: signing key is encrypted: give --sign-key-password-file or "
                "--sign-key-password-env",
                code="key.password_missing",
            )
    return load_private_key(data, password, str(signer.key))


# --- pack -------------------------------------------------------------------------------


def pack_bytes(
    credentials: CredentialSet, *, signing_key: Any = None
) -> tuple[bytes, bytes | None]:
    """Bundle bytes for a checked set, signed when `signing_key` is given; and the key id."""
    if signing_key is None:
        return fmt.encode(credentials), None

    def sign(digest: bytes) -> fmt.BundleSignature:
        return fmt.BundleSignature(*sign_digest(signing_key, digest))

    data = fmt.encode_signed(credentials, sign)
    return data, data[-(fmt.KEY_ID_SIZE + fmt.SIGNATURE_SIZE) : -fmt.SIGNATURE_SIZE]


def _has_secret(credentials: CredentialSet) -> bool:
    return any(s.type.is_secret for s in credentials)


def write_bundle(path: Path, data: bytes, *, secret: bool, force: bool) -> None:
    """Write atomically; 0600 when the bundle holds a key, password or PSK."""
    write_outputs(
        [OutputFile(path, data, KEY_MODE if secret else PUBLIC_MODE, is_key=secret)], force=force
    )


def pack(
    sources: PackSources,
    out: Path,
    *,
    target: str = "default",
    force: bool = False,
    signer: SignerSource | None = None,
    ask_password: AskPassword | None = None,
    now: datetime | None = None,
) -> PackResult:
    """Read, check, encode, (sign,) write. Nothing is written unless every step succeeds.

    Error findings of the pre-flight check refuse the pack (CheckFailed) unless `force`;
    `force` also allows replacing an existing output file.
    """
    if out.is_dir():
        raise InputError(f"{out}: is a directory; give the bundle file's name")
    if out.exists() and not force:
        # Fail before asking for passwords or reading anything.
        raise OverwriteError(f"{out}: file exists; use --force to overwrite")
    credentials = read_credentials(sources, ask_password=ask_password)
    findings = tuple(check_credential_set(credentials, target=target, now=now))
    if not force:
        refuse_errors(findings, "--force packs anyway")
    signing_key = load_signer(signer, ask_password) if signer is not None else None
    data, kid = pack_bytes(credentials, signing_key=signing_key)
    write_bundle(out, data, secret=_has_secret(credentials), force=force)
    end = len(data) - (fmt.KEY_ID_SIZE + fmt.SIGNATURE_SIZE if kid is not None else 0)
    digest = data[end - fmt.DIGEST_SIZE : end]
    return PackResult(out, len(data), digest, kid, credentials, findings)


# --- reading bundles --------------------------------------------------------------------


def read_bundle(path: Path) -> fmt.DecodedBundle:
    """Read and decode a bundle file; errors name the file."""
    try:
        data = _read_file(path, "bundle", limit=MAX_BUNDLE_SIZE)
    except PolicyError as err:
        raise BundleError(f"{err.message}: larger than any bundle", code="bundle.size") from None
    try:
        return fmt.decode(data)
    except BundleError as err:
        raise BundleError(f"{path}: {err.message}", code=err.code) from None


def _certificate_rows(slot: Slot) -> tuple[list[dict[str, Any]], str | None]:
    try:
        certs = load_certificates(slot.data, f"{slot.type.label} in sec_tag {slot.sec_tag}")
    except InputError as err:
        return [], err.message
    return [summarize(c).to_json() for c in certs], None


def describe(decoded: fmt.DecodedBundle, path: Path | None = None) -> dict[str, Any]:
    """A JSON-able description of a bundle. Secrets appear as size only (client_key also
    with its SHA-256, which reveals nothing usable; a short password's digest could be
    guessed, so key_password and psk get none)."""
    records = []
    for index, slot in enumerate(decoded.credentials):
        row: dict[str, Any] = {
            "index": index,
            "sec_tag": slot.sec_tag,
            "slot": slot.type.label,
            "encoding": slot.encoding.label,
            "flags": ["encrypted"] if slot.flags & SlotFlags.ENCRYPTED else [],
            "size": len(slot.data),
            "sha256": None
            if slot.type in (SlotType.KEY_PASSWORD, SlotType.PSK)
            else hashlib.sha256(slot.data).hexdigest(),
        }
        if slot.type.is_certificate:
            row["certificates"], row["certificate_error"] = _certificate_rows(slot)
        if slot.type is SlotType.PSK_IDENTITY:
            row["value"] = slot.data.decode("utf-8", errors="replace")
        records.append(row)
    sig = decoded.signature
    return {
        "file": str(path) if path is not None else None,
        "format_version": fmt.FORMAT_VERSION,
        "size": decoded.size,
        "device_id": decoded.credentials.device_id,
        "digest": decoded.digest.hex(),
        "signed": sig is not None,
        "key_id": sig.key_id.hex() if sig is not None else None,
        "records": records,
    }


def verify(
    path: Path,
    *,
    public_key: Path | None = None,
    target: str = "default",
    now: datetime | None = None,
) -> VerifyResult:
    """Integrity (decode), signature (when a key is given) and the pre-flight check.

    A bad or missing signature when a key is given raises BundleError; check findings are
    returned for the caller to turn into an exit code.
    """
    decoded = read_bundle(path)
    sig = decoded.signature
    if public_key is not None:
        key_data = _read_file(public_key, "public key or certificate")
        key = load_public_key(key_data, str(public_key))
        if sig is None:
            raise BundleError(
                f"{path}: bundle is not signed, but a key to check it with was given",
                code="bundle.unsigned",
            )
        if not verify_digest(key, decoded.digest, sig.key_id, sig.signature):
            try:
                given = key_id(key).hex()
            except Exception:  # a non-EC key has no bundle key id
                given = "none"
            raise BundleError(
                f"{path}: signature does not verify with {public_key} "
                f"(bundle key id {sig.key_id.hex()}, given key id {given})",
                code="bundle.signature",
            )
        status = "valid"
    else:
        status = "not signed" if sig is None else "present, not checked"
    findings = tuple(check_credential_set(decoded.credentials, target=target, now=now))
    return VerifyResult(path, decoded, status, findings)


# --- unpack -----------------------------------------------------------------------------

_EXT = {Encoding.PEM: "pem", Encoding.DER: "der"}
_RAW_EXT = {SlotType.KEY_PASSWORD: "txt", SlotType.PSK: "hex", SlotType.PSK_IDENTITY: "txt"}
SPEC_NAME = "bundle.toml"


def unpack(path: Path, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write every item to `out_dir` as tag<N>-<slot>[-<i>].<ext>, plus bundle.toml, a spec
    that packs them again (to the same bytes, unless the bundle was signed).

    Secrets (client_key, key_password, psk) are written 0600. Existing files are refused
    unless `force`; either every file is written or none.
    """
    decoded = read_bundle(path)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: not a directory")
    outputs: list[OutputFile] = []
    tags: list[TagSources] = []
    for tag in decoded.credentials.sec_tags:
        items = decoded.credentials.in_tag(tag)
        several_roots = sum(s.type is SlotType.ROOT_CA for s in items) > 1
        args: dict[str, Any] = {"sec_tag": tag}
        root_paths: list[Path] = []
        for slot in items:
            suffix = ""
            if slot.type is SlotType.ROOT_CA and several_roots:
                suffix = f"-{len(root_paths)}"
            ext = _EXT.get(slot.encoding) or _RAW_EXT[slot.type]
            file = out_dir / f"tag{tag}-{slot.type.label}{suffix}.{ext}"
            data = slot.data
            if slot.type is SlotType.PSK:
                data = slot.data.hex().encode() + b"\n"
            elif slot.type is SlotType.KEY_PASSWORD:
                data = slot.data + b"\n"
            secret = slot.type.is_secret
            outputs.append(OutputFile(file, data, KEY_MODE if secret else PUBLIC_MODE, secret))
            if slot.type is SlotType.ROOT_CA:
                root_paths.append(file)
            elif slot.type is SlotType.KEY_PASSWORD:
                args["key_password"] = SecretSource(file=file)
            elif slot.type is SlotType.PSK:
                args["psk"] = SecretSource(file=file, hex=True)
            else:
                args[slot.type.label] = file
        if root_paths:
            args["root_ca"] = tuple(root_paths)
        tags.append(TagSources(**args))
    spec = PackSources(tuple(tags), device_id=decoded.credentials.device_id, encoding="keep")
    outputs.append(OutputFile(out_dir / SPEC_NAME, dump_spec(spec, out_dir).encode()))
    # write_outputs makes a missing out_dir (0700: it gets keys) and removes it on failure.
    write_outputs(outputs, force=force)
    return [o.path for o in outputs]
