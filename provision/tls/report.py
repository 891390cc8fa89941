"""The outcome of one mutual-TLS handshake, and the named ways it can fail.

A HandshakeReport is a plain frozen value: the simulated device builds one and sends its fields
over the link; the host renders it. `Failure` numbers are on-wire values (native TLS_CHECK
result, AT and shell extension replies): append new names, never renumber.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# Seconds a mutual-TLS handshake may take, device-side or host-side.
DEFAULT_TIMEOUT = 5.0


class Failure(IntEnum):
    """Why a handshake did not prove the credentials. NONE means it did."""

    NONE = 0
    UNKNOWN_CA = 1  # our roots do not anchor the server's chain
    SERVER_HOSTNAME_MISMATCH = 2  # the server's certificate is not for the name we dialled
    CLIENT_CERT_REJECTED = 3  # the server refused our certificate (expired, unknown CA, none)
    KEY_MISMATCH = 4  # client_key is not the key of client_cert
    KEY_PASSWORD_MISSING = 5  # client_key is encrypted and there is no key_password
    KEY_PASSWORD_WRONG = 6  # key_password does not decrypt client_key
    CONNECTION_REFUSED = 7
    TIMEOUT = 8
    SERVER_CERT_EXPIRED = 9  # the server's certificate (or one in its chain) is out of date
    BAD_CREDENTIALS = 10  # a slot is missing or is not a certificate/key ssl can load
    PROTOCOL_MISMATCH = 11  # no TLS version or cipher both sides accept
    HANDSHAKE_FAILED = 12  # anything else; the detail says what the TLS library said

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: int | str) -> Failure:
        if isinstance(value, int):
            return cls(value)
        return cls[value.strip().upper()]


@dataclass(frozen=True)
class HandshakeReport:
    """What a mutual-TLS handshake showed.

    `client_accepted` is True when the server proved it accepted our certificate (TLS 1.2: its
    Finished message; TLS 1.3: a post-handshake message such as a session ticket or the test
    server's greeting), False when it rejected it, None when it stayed silent. `evidence` says
    which of these it was, in words.
    """

    server: str  # "host:port" as dialled
    failure: Failure = Failure.NONE
    detail: str = ""  # one line; never key bytes or passwords
    version: str | None = None  # "TLSv1.3"
    cipher: str | None = None  # "TLS_AES_256_GCM_SHA384"
    server_chain: tuple[str, ...] = field(default=())  # subjects as verified, leaf first
    server_verified: bool = False
    client_accepted: bool | None = None
    accepted_as: str | None = None  # our subject as the server echoed it (provision testserver)
    evidence: str = ""
    sec_tag: int | None = None

    @property
    def ok(self) -> bool:
        return self.failure is Failure.NONE and self.server_verified and bool(self.client_accepted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "ok": self.ok,
            "failure": None if self.failure is Failure.NONE else self.failure.label,
            "detail": self.detail,
            "version": self.version,
            "cipher": self.cipher,
            "server_chain": list(self.server_chain),
            "server_verified": self.server_verified,
            "client_accepted": self.client_accepted,
            "accepted_as": self.accepted_as,
            "evidence": self.evidence,
            "sec_tag": self.sec_tag,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandshakeReport:
        failure = data.get("failure")
        return cls(
            server=str(data["server"]),
            failure=Failure.NONE if failure in (None, "", 0) else Failure.parse(failure),
            detail=str(data.get("detail") or ""),
            version=data.get("version") or None,
            cipher=data.get("cipher") or None,
            server_chain=tuple(data.get("server_chain") or ()),
            server_verified=bool(data.get("server_verified")),
            client_accepted=data.get("client_accepted"),
            accepted_as=data.get("accepted_as") or None,
            evidence=str(data.get("evidence") or ""),
            sec_tag=data.get("sec_tag"),
        )

    def summary(self) -> str:
        """One line for logs and error messages."""
        if self.ok:
            who = f" as {self.accepted_as}" if self.accepted_as else ""
            return f"{self.server}: mutual TLS accepted{who} ({self.version}, {self.cipher})"
        if self.failure is Failure.NONE:
            return f"{self.server}: handshake done but the server did not confirm ({self.evidence})"
        return f"{self.server}: {self.failure.label}: {self.detail}"
