"""Credential bytes → ssl contexts.

Python's ssl module reads a certificate chain and its key only from files. They are written to
a private directory (0700, files 0600, on tmpfs where there is one), loaded, and deleted at
once; roots go in through `cadata` and never touch the disk. Key bytes and passwords never
reach a message.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from provision.bundle.model import CredentialSet, Slot, SlotType
from provision.errors import InputError, TLSCheckError
from provision.pki.files import open_private
from provision.pki.keys import (
    PrivateKey,
    key_is_encrypted,
    load_private_key,
    serialize_private_key,
)
from provision.tls.report import Failure

TLS_VERSIONS = ("1.2", "1.3")
_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TLSSetupError(TLSCheckError):
    """Credentials that cannot even be loaded; `failure` names why."""

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message, code=f"tls.{failure.label}")
        self.failure = failure


@dataclass(frozen=True)
class TLSMaterial:
    """What one side of a handshake holds: trusted roots, its certificate (chain) and key.

    Certificates are PEM (one or more blocks) or DER; the key is PEM or DER, PKCS#8 (possibly
    encrypted), SEC1 or PKCS#1. repr() shows sizes only.
    """

    roots: tuple[bytes, ...] = field(repr=False)
    cert: bytes | None = field(default=None, repr=False)
    key: bytes | None = field(default=None, repr=False)
    key_password: bytes | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        key = "yes" if self.key else "no"
        password = "yes" if self.key_password else "no"
        return (
            f"TLSMaterial(roots={len(self.roots)}, cert={len(self.cert or b'')} bytes, "
            f"key={key}, key_password={password})"
        )

    @classmethod
    def from_slots(cls, slots: CredentialSet | Iterable[Slot], sec_tag: int) -> TLSMaterial:
        """The material of one sec_tag: every root_ca, client_cert, client_key, key_password.

        This is all a device has: nothing from the host side is added.
        """
        in_tag = [s for s in slots if s.sec_tag == sec_tag]
        if not in_tag:
            raise TLSSetupError(Failure.BAD_CREDENTIALS, f"sec_tag {sec_tag} holds no credentials")

        def one(slot_type: SlotType) -> bytes | None:
            found = [s.data for s in in_tag if s.type is slot_type]
            return found[0] if found else None

        return cls(
            roots=tuple(s.data for s in in_tag if s.type is SlotType.ROOT_CA),
            cert=one(SlotType.CLIENT_CERT),
            key=one(SlotType.CLIENT_KEY),
            key_password=one(SlotType.KEY_PASSWORD),
        )


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def _set_version(ctx: ssl.SSLContext, tls_version: str | None) -> None:
    if tls_version is None:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return
    try:
        version = _VERSIONS[tls_version]
    except KeyError:
        raise InputError(
            f"unknown TLS version {tls_version!r} (valid: {', '.join(TLS_VERSIONS)})"
        ) from None
    ctx.minimum_version = version
    ctx.maximum_version = version


def _load_roots(ctx: ssl.SSLContext, roots: tuple[bytes, ...], who: str) -> None:
    if not roots:
        raise TLSSetupError(Failure.BAD_CREDENTIALS, f"{who} has no root_ca to verify the peer")
    for data in roots:
        try:
            # cadata takes PEM as text, DER as bytes: roots never need a file.
            ctx.load_verify_locations(cadata=data.decode("ascii") if _is_pem(data) else data)
        except (ssl.SSLError, UnicodeDecodeError, ValueError):
            raise TLSSetupError(
                Failure.BAD_CREDENTIALS, f"{who}: a root_ca is not a PEM or DER certificate"
            ) from None


def _private_dir() -> str:
    # tmpfs keeps the short-lived key file off persistent storage where the OS has one.
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None
    return tempfile.mkdtemp(prefix="provision-tls-", dir=base)  # mode 0700


def _write_private(path: str, data: bytes) -> None:
    with os.fdopen(open_private(path, os.O_WRONLY), "wb") as fh:
        fh.write(data)


@contextlib.contextmanager
def _private_files(cert_pem: bytes, key_pem: bytes) -> Iterator[tuple[str, str]]:
    directory = _private_dir()
    try:
        cert_path = os.path.join(directory, "cert.pem")
        key_path = os.path.join(directory, "key.pem")
        _write_private(cert_path, cert_pem)
        _write_private(key_path, key_pem)
        yield cert_path, key_path
    finally:
        shutil.rmtree(directory, ignore_errors=True)


_KEY_CODES = {
    "key.password_missing": Failure.KEY_PASSWORD_MISSING,
    "key.password_wrong": Failure.KEY_PASSWORD_WRONG,
}


def _check_key(key: bytes, password: bytes | None, who: str) -> PrivateKey:
    try:
        return load_private_key(key, password, f"{who} private key")
    except InputError as err:
        failure = _KEY_CODES.get(err.code or "", Failure.BAD_CREDENTIALS)
        raise TLSSetupError(failure, err.message) from None


def _key_pem(key: bytes, password: bytes | None, who: str) -> bytes:
    if _is_pem(key):
        return key
    # ssl reads PEM only: a DER key is re-encoded, and stays encrypted if it was.
    return serialize_private_key(_check_key(key, password, who), password=password)


class _PasswordMissing(Exception):
    pass


def _refuse_prompt() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal; a device has no terminal.
    raise _PasswordMissing


def _load_chain(
    ctx: ssl.SSLContext, cert: bytes | None, key: bytes | None, password: bytes | None, who: str
) -> None:
    if not cert:
        raise TLSSetupError(Failure.BAD_CREDENTIALS, f"{who} has no certificate")
    if not key:
        raise TLSSetupError(Failure.BAD_CREDENTIALS, f"{who} has no private key")
    encrypted = key_is_encrypted(key)
    if encrypted and not password:
        raise TLSSetupError(
            Failure.KEY_PASSWORD_MISSING,
            f"{who}: the private key is encrypted and there is no key_password",
        )
    if _is_pem(cert):
        cert_pem = cert
    else:
        try:
            cert_pem = ssl.DER_cert_to_PEM_cert(cert).encode()
        except ValueError:
            raise TLSSetupError(Failure.BAD_CREDENTIALS, f"{who}: certificate is not DER") from None
    if encrypted:
        # cryptography tells a wrong password apart from a damaged key; OpenSSL's error
        # queue does not reliably.
        _check_key(key, password, who)
    key_pem = _key_pem(key, password, who)
    pw: bytes | Callable[[], bytes] = password if (encrypted and password) else _refuse_prompt
    try:
        with _private_files(cert_pem, key_pem) as (cert_path, key_path):
            ctx.load_cert_chain(cert_path, key_path, password=pw)
    except _PasswordMissing:
        raise TLSSetupError(
            Failure.KEY_PASSWORD_MISSING,
            f"{who}: the private key is encrypted and there is no key_password",
        ) from None
    except ssl.SSLError as err:
        raise _chain_error(err, encrypted, who) from None


def _chain_error(err: ssl.SSLError, encrypted: bool, who: str) -> TLSSetupError:
    reason = (err.reason or "").upper()
    text = str(err).lower()
    if reason == "KEY_VALUES_MISMATCH" or "key values mismatch" in text:
        return TLSSetupError(
            Failure.KEY_MISMATCH, f"{who}: the private key does not belong to the certificate"
        )
    if encrypted and ("BAD_DECRYPT" in reason or "bad decrypt" in text or reason == "PEM_LIB"):
        return TLSSetupError(
            Failure.KEY_PASSWORD_WRONG, f"{who}: key_password does not decrypt the private key"
        )
    return TLSSetupError(
        Failure.BAD_CREDENTIALS,
        f"{who}: certificate or private key cannot be loaded ({err.reason or 'unknown reason'})",
    )


def client_context(material: TLSMaterial, tls_version: str | None = None) -> ssl.SSLContext:
    """A client context that verifies the server against `material.roots` (and its name)
    and presents `material.cert` with `material.key`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED and check_hostname
    _set_version(ctx, tls_version)
    _load_roots(ctx, material.roots, "the client")
    _load_chain(ctx, material.cert, material.key, material.key_password, "client")
    return ctx


def server_context(material: TLSMaterial, tls_version: str | None = None) -> ssl.SSLContext:
    """A server context that requires a client certificate anchored in `material.roots`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.verify_mode = ssl.CERT_REQUIRED
    _set_version(ctx, tls_version)
    # No tickets: the test server's greeting is then the first thing a TLS 1.3 client reads.
    ctx.options |= ssl.OP_NO_TICKET
    ctx.num_tickets = 0
    _load_roots(ctx, material.roots, "the server")
    _load_chain(ctx, material.cert, material.key, material.key_password, "server")
    return ctx
