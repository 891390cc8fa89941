"""The client half of the proof: one mutual-TLS handshake from credential bytes.

    report = handshake("localhost", 8443, TLSMaterial.from_slots(bundle.credentials, 42))

The TLS engine runs over memory BIOs and this module moves the bytes, so it sees every
record the server sends after the handshake: in TLS 1.3 the server judges our certificate
only after our Finished, and its verdict arrives as an alert (rejected), a session ticket or
application data (accepted). `handshake` never raises for a failed handshake: it returns a
report with a named failure, which a simulated device sends back over its link.
"""

from __future__ import annotations

import _ssl
import contextlib
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from provision.bundle.model import CredentialSet, Slot
from provision.pki.certs import describe_certificate
from provision.tls.material import TLSMaterial, TLSSetupError, client_context
from provision.tls.report import Failure, HandshakeReport

# What provision testserver sends once it has verified a client: "ACCEPTED <subject>\n".
GREETING_PREFIX = b"ACCEPTED "
DEFAULT_TIMEOUT = 5.0
# How long to wait, after our Finished, for a server that says nothing (TLS 1.3 only).
DEFAULT_CONFIRM_TIMEOUT = 1.0

# Verify codes from OpenSSL's x509_vfy.h: which ones mean "our roots do not anchor it".
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21, 27}
_EXPIRED = {9, 10}  # not yet valid, expired
_HOSTNAME_MISMATCH = {62, 64}
# Alerts the server sends when it refuses our certificate.
_REJECT_ALERTS = {
    "TLSV1_ALERT_UNKNOWN_CA": "the server does not know the CA that issued our certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the server says our certificate has expired",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the server says our certificate is bad",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the server could not verify our certificate",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "the server does not support our certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "the server says our certificate is revoked",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the server requires a client certificate",
    "TLSV1_ALERT_ACCESS_DENIED": "the server denied access to our certificate",
    "TLSV1_ALERT_DECRYPT_ERROR": "the server could not verify our CertificateVerify signature",
}
_VERSION_ALERTS = {
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "WRONG_SSL_VERSION",
    "NO_PROTOCOLS_AVAILABLE",
    "NO_SHARED_CIPHER",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
}


class _Deadline(Exception):
    pass


class _Wire:
    """Moves bytes between a socket and an SSLObject's memory BIOs, within one deadline."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, server_name: str) -> None:
        self.sock = sock
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)

    def flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def receive(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise _Deadline from None
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def handshake(self, deadline: float) -> None:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                self.receive(deadline)
            except ssl.SSLError:
                # The alert explaining why we gave up is in the outgoing BIO: send it, as
                # any TLS client would, so the server logs a reason rather than an EOF.
                with contextlib.suppress(OSError):
                    self.flush()
                raise
            else:
                self.flush()
                return


def _subject(der: bytes) -> str:
    try:
        return describe_certificate(der, "server certificate").subject
    except Exception:  # a chain we cannot describe still verified; say so, do not fail
        return "(unreadable subject)"


def _verified_chain(tls: ssl.SSLObject) -> tuple[str, ...]:
    # Public from Python 3.13; the same C method exists (private) since 3.10.
    getter = getattr(tls, "get_verified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_verified_chain", None
    )
    if getter is not None:
        chain: list[Any] = getter()
        ders = [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in chain]
        return tuple(_subject(d) for d in ders)
    leaf = tls.getpeercert(binary_form=True)
    return (_subject(leaf),) if leaf else ()


def _verify_failure(err: ssl.SSLCertVerificationError) -> tuple[Failure, str]:
    code = err.verify_code
    message = err.verify_message or str(err)
    if code in _HOSTNAME_MISMATCH:
        return Failure.SERVER_HOSTNAME_MISMATCH, f"server certificate: {message}"
    if code in _EXPIRED:
        return Failure.SERVER_CERT_EXPIRED, f"server certificate: {message}"
    if code in _UNKNOWN_ISSUER:
        return (
            Failure.UNKNOWN_CA,
            f"our root_ca does not anchor the server's chain ({message})",
        )
    return Failure.HANDSHAKE_FAILED, f"server certificate not accepted: {message}"


def _alert_failure(err: ssl.SSLError) -> tuple[Failure, str]:
    reason = (err.reason or "").upper()
    if reason in _REJECT_ALERTS:
        return Failure.CLIENT_CERT_REJECTED, f"{_REJECT_ALERTS[reason]} ({err.reason})"
    if reason in _VERSION_ALERTS:
        return Failure.PROTOCOL_MISMATCH, f"no TLS version or cipher in common ({err.reason})"
    return Failure.HANDSHAKE_FAILED, f"TLS error: {err.reason or err}"


@dataclass(frozen=True)
class _Verdict:
    """What the server told us after our Finished."""

    accepted: bool | None
    evidence: str
    subject: str | None = None
    failure: Failure = Failure.NONE
    detail: str = ""


def _confirm(wire: _Wire, version: str, deadline: float) -> _Verdict:
    """Read what the server sends after our Finished until it says whether it accepted us."""
    tls13 = version == "TLSv1.3"
    finished = "the server's Finished came after it verified our certificate (TLS 1.2)"
    data = b""
    while True:
        try:
            chunk = wire.tls.read(4096)
        except ssl.SSLWantReadError:
            session = wire.tls.session
            if session is not None and session.has_ticket:
                # Servers that send tickets (openssl s_server) send no greeting.
                ticket = "the server sent a session ticket after our Finished"
                return _Verdict(True, ticket if tls13 else finished)
            try:
                wire.flush()
                wire.receive(deadline)
            except _Deadline:
                if tls13:
                    return _Verdict(None, "the server sent nothing after our Finished")
                return _Verdict(True, finished)
            continue
        except ssl.SSLZeroReturnError:
            chunk = b""
        except ssl.SSLError as err:
            if isinstance(err, ssl.SSLEOFError) or "EOF" in (err.reason or "").upper():
                chunk = b""
            else:
                failure, detail = _alert_failure(err)
                evidence = f"the server sent an alert ({err.reason})"
                return _Verdict(False, evidence, None, failure, detail)
        data += chunk
        if chunk and b"\n" not in data and len(data) < 4096:
            continue  # a greeting line may arrive in pieces
        if data.startswith(GREETING_PREFIX):
            subject = data[len(GREETING_PREFIX) :].split(b"\n", 1)[0].decode(errors="replace")
            return _Verdict(True, "the server greeted us with our subject", subject)
        if data:
            return _Verdict(True, "the server sent application data after our Finished")
        if tls13:
            return _Verdict(None, "the server closed the connection without a verdict")
        return _Verdict(True, finished)


def handshake(
    host: str,
    port: int,
    material: TLSMaterial,
    *,
    tls_version: str | None = None,
    server_name: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT,
    sec_tag: int | None = None,
) -> HandshakeReport:
    """Connect to host:port, do a mutual-TLS handshake with `material`, report what happened.

    The server is verified against `material.roots` only, and its certificate must be for
    `server_name` (default: `host`). Never raises for TLS or network failures.
    """
    where = f"{host}:{port}"

    def fail(failure: Failure, detail: str, **extra: Any) -> HandshakeReport:
        return HandshakeReport(where, failure, detail, sec_tag=sec_tag, **extra)

    try:
        ctx = client_context(material, tls_version)
    except TLSSetupError as err:
        return fail(err.failure, err.message)
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return fail(Failure.CONNECTION_REFUSED, f"nothing listens on {where}")
    except TimeoutError:
        return fail(Failure.TIMEOUT, f"no TCP connection to {where} within {timeout:g} s")
    except OSError as err:
        return fail(Failure.HANDSHAKE_FAILED, f"cannot connect to {where}: {err.strerror or err}")
    with sock:
        wire = _Wire(sock, ctx, server_name or host)
        try:
            wire.handshake(deadline)
        except _Deadline:
            return fail(Failure.TIMEOUT, f"no complete handshake within {timeout:g} s")
        except ssl.SSLCertVerificationError as err:
            failure, detail = _verify_failure(err)
            return fail(failure, detail)
        except ssl.SSLError as err:
            failure, detail = _alert_failure(err)
            if "EOF" in (err.reason or "").upper() or isinstance(err, ssl.SSLEOFError):
                failure = Failure.HANDSHAKE_FAILED
                detail = "the server closed the connection during the handshake"
            return fail(failure, detail)
        except OSError as err:
            return fail(Failure.HANDSHAKE_FAILED, f"connection lost: {err.strerror or err}")
        version = wire.tls.version() or "?"
        cipher = (wire.tls.cipher() or ("?",))[0]
        chain = _verified_chain(wire.tls)
        confirm_deadline = min(deadline, time.monotonic() + confirm_timeout)
        try:
            verdict = _confirm(wire, version, confirm_deadline)
        except OSError as err:
            verdict = _Verdict(None, f"connection lost: {err.strerror or err}")
        _close(wire)
        silent = verdict.evidence if verdict.accepted is None else ""
        return HandshakeReport(
            where,
            verdict.failure,
            verdict.detail or silent,
            version=version,
            cipher=cipher,
            server_chain=chain,
            server_verified=True,
            client_accepted=verdict.accepted,
            accepted_as=verdict.subject,
            evidence=verdict.evidence,
            sec_tag=sec_tag,
        )


def _close(wire: _Wire) -> None:
    with contextlib.suppress(ssl.SSLError, OSError, ValueError):
        wire.tls.unwrap()
    with contextlib.suppress(OSError):
        wire.flush()


def handshake_from_slots(
    slots: CredentialSet | Iterable[Slot], sec_tag: int, host: str, port: int, **options: Any
) -> HandshakeReport:
    """What a (simulated) device does: the handshake with only its own slots of `sec_tag`.

    `options` are handshake()'s keyword arguments. Never raises for TLS, network or
    credential failures.
    """
    try:
        material = TLSMaterial.from_slots(slots, sec_tag)
    except TLSSetupError as err:
        return HandshakeReport(f"{host}:{port}", err.failure, err.message, sec_tag=sec_tag)
    return handshake(host, port, material, sec_tag=sec_tag, **options)
