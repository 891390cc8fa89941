"""The server half: a mutual-TLS test server on 127.0.0.1.

It requires a client certificate anchored in its roots, verifies it, and answers every client
it accepted with `ACCEPTED <subject>\\n`, so the client learns the verdict (and how the server
saw it) without waiting. Each connection yields one ClientEvent for the caller to render.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

from provision.errors import InputError
from provision.pki.certs import describe_certificate
from provision.tls.client import GREETING_PREFIX
from provision.tls.material import TLSMaterial, server_context

HOST = "127.0.0.1"  # test servers never listen beyond this machine
_POLL = 0.2  # how often the accept loop looks at its stop flag


@dataclass(frozen=True)
class ClientEvent:
    """What the server saw of one client."""

    peer: str
    accepted: bool
    subject: str | None = None
    version: str | None = None
    cipher: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "peer": self.peer,
            "accepted": self.accepted,
            "subject": self.subject,
            "version": self.version,
            "cipher": self.cipher,
            "reason": self.reason,
        }


def _reason(err: BaseException) -> str:
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"client certificate not accepted: {err.verify_message}"
    if isinstance(err, ssl.SSLError):
        reason = err.reason or str(err)
        if "ALERT" in reason:
            return f"the client aborted the handshake ({reason})"
        return f"TLS error: {reason}"
    if isinstance(err, (TimeoutError, socket.timeout)):
        return "the client did not finish the handshake in time"
    return f"connection error: {err}"


def _subject(der: bytes | None) -> str | None:
    if not der:
        return None
    try:
        return describe_certificate(der, "client certificate").subject
    except Exception:  # OpenSSL verified it; a subject we cannot print must not stop the server
        return "(unreadable subject)"


class TestServer:
    """A listening mutual-TLS server. Use as a context manager, or call close()."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        material: TLSMaterial,
        *,
        port: int = 0,
        tls_version: str | None = None,
        handshake_timeout: float = 5.0,
    ) -> None:
        self.context = server_context(material, tls_version)
        self.handshake_timeout = handshake_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, port))
            sock.listen(16)
            sock.settimeout(_POLL)
        except OSError as err:
            sock.close()
            raise InputError(
                f"{HOST}:{port}: cannot listen: {err.strerror} (choose another port, 0 for any)"
            ) from None
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def handle(self, conn: socket.socket, addr: tuple[str, int]) -> ClientEvent:
        """Handshake with one accepted connection, greet the client if it passed, close."""
        peer = f"{addr[0]}:{addr[1]}"
        conn.settimeout(self.handshake_timeout)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                subject = _subject(tls.getpeercert(binary_form=True))
                version, cipher = tls.version(), (tls.cipher() or (None,))[0]
                with contextlib.suppress(OSError):
                    tls.sendall(GREETING_PREFIX + (subject or "").encode() + b"\n")
                    # close_notify: the client sees a clean end, not a truncation. A client
                    # that never answers it must not hold the server up for long.
                    tls.settimeout(min(self.handshake_timeout, 1.0))
                    tls.unwrap()
                return ClientEvent(peer, True, subject, version, cipher)
        except (OSError, ssl.SSLError) as err:
            return ClientEvent(peer, False, reason=_reason(err))
        finally:
            conn.close()

    def serve(self, on_event: Callable[[ClientEvent], None], *, once: bool = False) -> None:
        """Accept clients until stop() (or after the first one when `once`)."""
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            on_event(self.handle(conn, addr))
            if once:
                return

    def start(self, on_event: Callable[[ClientEvent], None] | None = None) -> TestServer:
        """Serve in a background thread (tests, demos)."""
        self._thread = threading.Thread(
            target=self.serve, args=(on_event or (lambda _e: None),), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self._sock.close()

    def __enter__(self) -> TestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
