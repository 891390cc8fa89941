"""The post-write proof: provisioning is done when the device can authenticate.

After write and verify, the station asks the device to run a real mutual-TLS handshake to a
server with only what its own slots of one sec_tag hold (provision.tls.device_check), and
keeps the outcome: negotiated version and cipher when the server accepted the device, the
named failure otherwise. A failed proof fails the device (cause `tls.<failure>`). A target
that cannot run a handshake itself (a real board, the C stub, a shell without the
simulator's extension) fails too, or — with `unsupported = "skip"` — passes with a note.

    [proof]
    server = "127.0.0.1:8443"   # HOST:PORT the device dials; its certificate must match HOST
    tag = 42                    # default: the client tag
    tls = "1.3"                 # optional: only this version
    timeout = 5.0               # seconds for the handshake
    unsupported = "fail"        # or "skip": a device that cannot do it passes with a note
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provision.errors import InputError, TLSCheckError
from provision.tls.client import DEFAULT_TIMEOUT
from provision.tls.device_check import TLSCheckUnsupported, check_on_device
from provision.tls.material import TLS_VERSIONS
from provision.tls.report import Failure, HandshakeReport
from provision.tls.wire import parse_server

if TYPE_CHECKING:
    from provision.device import Device

UNSUPPORTED_CHOICES = ("fail", "skip")
_KEYS = {"server", "tag", "tls", "timeout", "unsupported"}


@dataclass(frozen=True)
class ProofConfig:
    server: str  # HOST:PORT, as configured
    sec_tag: int | None = None  # None: the station's client tag
    tls_version: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    unsupported: str = "fail"

    @property
    def address(self) -> tuple[str, int]:
        return parse_server(self.server)


def proof_from_dict(data: Any, source: str) -> ProofConfig:
    """The `[proof]` table; InputError names what is wrong with it."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: [proof] must be a table")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InputError(f"{source}: unknown [proof] setting(s): {', '.join(unknown)}")
    if "server" not in data:
        raise InputError(f'{source}: [proof] needs server = "HOST:PORT"')
    try:
        cfg = ProofConfig(
            server=str(data["server"]),
            sec_tag=int(data["tag"]) if "tag" in data else None,
            tls_version=str(data["tls"]) if "tls" in data else None,
            timeout=float(data.get("timeout", DEFAULT_TIMEOUT)),
            unsupported=str(data.get("unsupported", "fail")),
        )
    except (TypeError, ValueError) as err:
        raise InputError(f"{source}: bad [proof] value: {err}") from None
    return validated(cfg)


def validated(cfg: ProofConfig) -> ProofConfig:
    cfg.address  # noqa: B018 (parse_server raises InputError naming the problem)
    if cfg.tls_version is not None and cfg.tls_version not in TLS_VERSIONS:
        raise InputError(
            f"[proof] tls {cfg.tls_version!r} is not one of: {', '.join(TLS_VERSIONS)}"
        )
    if not 0.1 <= cfg.timeout <= 60.0:
        raise InputError(f"[proof] timeout {cfg.timeout} out of range (0.1..60 seconds)")
    if cfg.unsupported not in UNSUPPORTED_CHOICES:
        raise InputError(
            f"[proof] unsupported {cfg.unsupported!r} is not one of: "
            f"{', '.join(UNSUPPORTED_CHOICES)}"
        )
    return cfg


@dataclass(frozen=True)
class ProofResult:
    """What the registry and the JSON line keep of one proof (no key material)."""

    result: str  # "accepted" | "failed" | "unsupported"
    server: str
    sec_tag: int
    version: str | None = None
    cipher: str | None = None
    failure: str | None = None  # Failure label, "not_confirmed" or "unsupported"
    detail: str | None = None
    accepted_as: str | None = None  # the subject the server saw

    @classmethod
    def from_report(cls, report: HandshakeReport, sec_tag: int) -> ProofResult:
        if report.ok:
            return cls(
                "accepted",
                report.server,
                sec_tag,
                report.version,
                report.cipher,
                accepted_as=report.accepted_as,
            )
        return cls(
            "failed",
            report.server,
            sec_tag,
            report.version,
            report.cipher,
            failure=_failure_name(report),
            detail=report.summary(),
        )

    @property
    def ok(self) -> bool:
        return self.result == "accepted"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}

    def text(self) -> str:
        """Canonical JSON for the registry row (and its hash)."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


def _failure_name(report: HandshakeReport) -> str:
    # The handshake went through but the server never said it accepted our certificate.
    return "not_confirmed" if report.failure is Failure.NONE else report.failure.label


class ProofFailed(TLSCheckError):
    """The device could not prove its credentials; `result` says how."""

    def __init__(self, result: ProofResult, message: str) -> None:
        super().__init__(message, code=f"tls.{result.failure}")
        self.result = result


def prove(device: Device, cfg: ProofConfig, client_tag: int) -> ProofResult:
    """Ask the open device to run the handshake; the result, or ProofFailed.

    A device that cannot run a handshake itself gives an "unsupported" result when
    `cfg.unsupported` is "skip", ProofFailed (`tls.unsupported`) otherwise. Link and device
    errors on the way propagate as they are.
    """
    host, port = cfg.address
    sec_tag = client_tag if cfg.sec_tag is None else cfg.sec_tag
    try:
        # The line's own open Device: run_check would open the port again, which on a jig
        # is the next board.
        report = check_on_device(
            device, host, port, sec_tag, tls_version=cfg.tls_version, timeout=cfg.timeout
        )
    except TLSCheckUnsupported as err:
        result = ProofResult(
            "unsupported", cfg.server, sec_tag, failure="unsupported", detail=err.why
        )
        if cfg.unsupported == "skip":
            return result
        raise ProofFailed(
            result,
            f"proof: the device cannot run a TLS handshake itself ({err.why}); "
            '[proof] unsupported = "skip" lets such devices pass with a note',
        ) from None
    result = ProofResult.from_report(report, sec_tag)
    if not result.ok:
        raise ProofFailed(result, f"proof: {report.summary()}")
    return result
