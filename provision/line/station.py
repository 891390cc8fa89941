"""One device on one port: identify, skip if done, issue, write, verify, record.

Every attempt ends in exactly one of: ok (recorded), skipped (registry record and on-device
digests already match), busy (another station holds the device), failed or rolled_back
(recorded, device tags cleaned). The device's tags are cleared before writing, so a device
that failed midway is provisioned from a clean state the next time it is presented.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from provision.bundle.model import SlotType
from provision.device import Device, DeviceInfo, SlotInfo
from provision.errors import DeviceError, LinkError, ProvisionError, RegistryError
from provision.line.config import StationConfig
from provision.line.issuer import Issued, Issuer
from provision.line.proof import ProofFailed, ProofResult, prove
from provision.registry import Claim, Entry, Registry, Result
from provision.registry.records import Record
from provision.transport.base import Interrupted

if TYPE_CHECKING:
    from provision.check import Finding


class Step(str, Enum):
    WAITING = "waiting"
    IDENTIFY = "identify"
    CHECK = "check"
    CLEAN = "clean"
    ISSUE = "issue"
    KEYGEN = "keygen"
    WRITE = "write"
    VERIFY = "verify"
    PROOF = "proof"
    RECORD = "record"
    ROLLBACK = "rollback"
    STOPPED = "stopped"


# Before the claim there is nothing to finish or roll back: a first signal cuts these short.
UNCLAIMED_STEPS = frozenset({Step.WAITING, Step.IDENTIFY, Step.CHECK})


class Status(str, Enum):
    OK = "ok"
    SKIPPED = "skipped"
    BUSY = "busy"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Outcome:
    port: str
    device_id: str
    status: Status
    seconds: float
    cert_serial: str | None = None
    error_code: str | None = None
    message: str | None = None
    bytes_sent: int = 0
    proof: ProofResult | None = None
    # Set when the registry already had a valid certificate for this device (a re-presented
    # board): what the station did about it.
    represented: Represented | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "event": "device",
            "port": self.port,
            "device_id": self.device_id,
            "status": self.status.value,
            "seconds": round(self.seconds, 3),
            "cert_serial": self.cert_serial,
            "error_code": self.error_code,
            "message": self.message,
            "bytes_sent": self.bytes_sent,
            "proof": self.proof.to_json() if self.proof else None,
            "represented": self.represented.to_json() if self.represented else None,
        }


@dataclass(frozen=True)
class Represented:
    """A board the registry already holds a valid certificate for, presented again."""

    policy: str  # the station's `represented` setting: allow | refuse | supersede
    previous_serials: tuple[str, ...]  # its certificates still in service, oldest first

    @property
    def action(self) -> str:
        return {"allow": "issued", "refuse": "refused", "supersede": "superseded"}[self.policy]

    def to_json(self) -> dict[str, object]:
        return {"action": self.action, "previous_serials": list(self.previous_serials)}

    def text(self) -> str:
        serials = ", ".join(self.previous_serials)
        return {
            "issued": f"provisioned before (certificate {serials} still valid): issued another",
            "refused": f"provisioned before (certificate {serials}): refused by the station's "
            'represented = "refuse"',
            "superseded": f"provisioned before: certificate {serials} marked superseded",
        }[self.action]


def error_code(err: BaseException) -> str:
    if isinstance(err, ProvisionError):
        return err.code or f"{err.exit_code.name.lower()}.error"
    return f"internal.{type(err).__name__}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


T = TypeVar("T")


@dataclass
class StationContext:
    cfg: StationConfig
    issuer: Issuer
    registry: Registry
    operator: str
    force: bool = False
    abort: threading.Event = field(default_factory=threading.Event)
    on_step: Callable[[str, Step, str | None], None] = lambda port, step, device: None
    # Where the claim's commit runs while the port lists the device (None: in the port's
    # own thread, one after the other).
    background: Executor | None = None

    def later(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """`fn(*args, **kwargs)` on the background executor (or now, without one)."""
        if self.background is not None:
            return self.background.submit(fn, *args, **kwargs)
        done: Future[T] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except Exception as err:
            done.set_exception(err)
        return done


@dataclass
class _Claimed:
    """The device's claim and what the host makes for it while the port lists the device."""

    claim: Claim
    in_service: list[Record] = field(default_factory=list)
    issued: Issued | None = None  # host-key flow: key and certificate, made with the claim
    checked: tuple[Finding, ...] | None = None  # the device's preflight of `issued`
    failed: Exception | None = None  # from issuing or its preflight: raised by the port


def _claim_and_issue(dev: Device, device_id: str, ctx: StationContext) -> _Claimed:
    """Claim (a RegistryError: the device is busy), then, unless the station refuses a board
    seen before, issue the host-key set and run its preflight: all of it before anything on
    the device changes, and none of it waiting for the device (the port lists it meanwhile,
    so the host's work is off the needle bed's time)."""
    got = _Claimed(ctx.registry.claim(device_id, ctx.cfg.station))
    try:
        got.in_service = ctx.registry.certificates_in_service(device_id)
        refused = bool(got.in_service) and ctx.cfg.represented == "refuse"
        if ctx.cfg.flow == "host-key" and not refused:
            # With the claim's serial: unique across every station sharing the registry.
            got.issued = ctx.issuer.issue_with_key(device_id, got.claim.serial)
            got.checked = dev.preflight(got.issued.credentials)
    except Exception as err:
        got.failed = err
    return got


def _drop_claim(pending: Future[_Claimed], ctx: StationContext) -> None:
    """The device step was interrupted while its claim was in flight: a claim that was won
    is given back (nothing was written). A certificate signed meanwhile never left this
    process, and its key goes with it: no row, as for a board stopped before its claim."""
    with contextlib.suppress(Exception):
        ctx.registry.release(pending.result().claim)


def _key_present(dev: Device, sec_tag: int) -> bool:
    return any(s.sec_tag == sec_tag and s.type is SlotType.CLIENT_KEY for s in dev.list())


def _already_done(dev: Device, ctx: StationContext, device_id: str) -> bool:
    rec = ctx.registry.latest(device_id)
    if rec is None or rec.result is not Result.OK or not rec.cert_pem:
        return False
    if not dev.verify(ctx.issuer.public_set(rec.cert_pem)).ok:
        return False
    return _key_present(dev, ctx.cfg.client_tag)


def provision_one(dev: Device, info: DeviceInfo, port: str, ctx: StationContext) -> Outcome:
    cfg = ctx.cfg
    device_id = info.device_id
    t0 = time.monotonic()
    started = utc_now()

    def step(s: Step) -> None:
        if ctx.abort.is_set():
            raise Interrupted
        ctx.on_step(port, s, device_id)

    def outcome(status: Status, **kw: Any) -> Outcome:
        return Outcome(port, device_id, status, time.monotonic() - t0, **kw)

    step(Step.CHECK)
    if not ctx.force and _already_done(dev, ctx, device_id):
        return outcome(Status.SKIPPED)
    # The claim's commit (an fsync) and the host-key set's issue run while the device lists
    # what it holds: all come before anything on the device changes, and the listing is
    # what the clean-up needs.
    pending = ctx.later(_claim_and_issue, dev, device_id, ctx)
    held: list[SlotInfo] = []
    listing_failed: Exception | None = None
    switched = False
    try:
        # The switch to --fast-baud comes here, not at the open: its exchange at the opening
        # rate is wire time the claim and the issue fill (the line looks at a board it has
        # just done, to see whether it was swapped, without switching).
        switched = dev.switch_baud(cfg.fast_baud)
        held = dev.list()
    except Interrupted:
        _drop_claim(pending, ctx)
        raise
    except Exception as err:
        listing_failed = err  # once the device is ours: a failed attempt, recorded
    try:
        claimed = pending.result()
    except RegistryError as err:
        return outcome(Status.BUSY, error_code=error_code(err), message=err.message)
    claim = claimed.claim

    # Signed already when it was (in the background): accounted for whatever happens next.
    issued: Issued | None = claimed.issued
    proof: ProofResult | None = None
    bytes_sent = 0
    touched = False
    device_uuid: str | None = None
    represented: Represented | None = None
    try:
        if listing_failed is not None:
            raise listing_failed
        if claimed.failed is not None:
            raise claimed.failed
        in_service = claimed.in_service
        if in_service:
            serials = tuple(str(r.cert_serial) for r in in_service)
            represented = Represented(cfg.represented, serials)
            if cfg.represented == "refuse":
                # Before the device is touched: a board seen before goes to rework as it is.
                _record_failure(
                    ctx, claim, None, device_id, started, Result.FAILED, "line.represented"
                )
                return outcome(
                    Status.FAILED,
                    error_code="line.represented",
                    message=f"device {device_id} was {represented.text()}",
                    represented=represented,
                )
        # Allocated with the claim: the registry's counter keeps serials unique across every
        # station sharing it, at no extra commit.
        serial = claim.serial
        subject = cfg.subject.format(device_id=device_id)
        checked = None
        # Validated before anything on the device changes (the clean-up included).
        if cfg.flow == "host-key":
            step(Step.ISSUE)
            checked = claimed.checked
        else:
            dev.check_keygen(cfg.client_tag, subject)
        step(Step.CLEAN)
        # Leftovers of an earlier, interrupted attempt (or an old provisioning) go first.
        tags = {t.sec_tag for t in cfg.layout}
        if any(s.sec_tag in tags for s in held):
            touched = True
            for tag in sorted(tags):
                dev.delete(tag)
        if issued is not None:
            to_write = issued.credentials
        else:
            step(Step.KEYGEN)
            touched = True
            csr = dev.keygen(cfg.client_tag, subject)
            # A dialect with signed keygen (nRF91) has checked the CSR digest; its UUID is
            # the device's name in nRF Cloud.
            attestation = dev.keygen_attestation()
            device_uuid = attestation.device_uuid if attestation is not None else None
            step(Step.ISSUE)
            issued = ctx.issuer.issue_for_csr(device_id, csr, serial)
            to_write = issued.public
        step(Step.WRITE)
        touched = True
        # Written and verified (a failed verify is VerifyFailed, as from `device write`).
        bytes_sent = dev.provision(to_write, checked=checked).bytes_sent
        # Host keys were part of the verified set; a device-made key must still be there.
        if cfg.flow != "host-key" and not _key_present(dev, cfg.client_tag):
            raise DeviceError(
                f"the device-generated client_key is gone after writing sec_tag "
                f"{cfg.client_tag} ({dev.dialect} replaces a whole tag on write)",
                code="device.keygen_key_lost",
            )
        note = None
        if cfg.proof is not None:
            # Done means the device can authenticate: it proves so with its own slots.
            step(Step.PROOF)
            proof = prove(dev, cfg.proof, cfg.client_tag)
            if not proof.ok:
                note = f"proof skipped: the device cannot run a TLS handshake ({proof.detail})"
        step(Step.RECORD)
        entry = registry_entry(
            ctx, issued, device_id, started, Result.OK, proof=proof, device_uuid=device_uuid
        )
        if represented is not None and represented.policy == "supersede":
            entry = dataclasses.replace(entry, supersedes=represented.previous_serials)
        # The row's commit (an fsync) runs while the device goes back to the rate the session
        # opened at; the device is reported done once the row is durable, and a row that
        # cannot be written still rolls the device back (the session stays open for it).
        if switched:
            recording = ctx.later(ctx.registry.record, entry, claim=claim)
            with contextlib.suppress(Exception):  # best effort (closing tries again)
                dev.restore_baud()
            recording.result()
        else:  # nothing to overlap: no hop to the registry thread and back
            ctx.registry.record(entry, claim=claim)
        return outcome(
            Status.OK,
            cert_serial=issued.cert_serial,
            bytes_sent=bytes_sent,
            proof=proof,
            message=note,
            represented=represented,
        )
    except Interrupted:
        # The rollback gets a reply timeout of its own (the runner's interrupt rule).
        ctx.on_step(port, Step.ROLLBACK, device_id)
        if _rollback(dev, cfg, touched):
            code, message = "interrupted", "aborted by operator"
        else:
            code = "interrupted.not_cleaned"
            message = (
                "aborted by operator; the device did not confirm the rollback and may hold "
                "part of this set (the next attempt on it cleans its tags first)"
            )
        _record_failure(ctx, claim, issued, device_id, started, Result.ROLLED_BACK, code)
        return outcome(Status.ROLLED_BACK, error_code=code, message=message)
    except Exception as err:
        code = error_code(err)
        message = err.message if isinstance(err, ProvisionError) else type(err).__name__
        if isinstance(err, ProofFailed):
            proof = err.result
        # After a link failure the board is likely gone or hung: trying to clean it would
        # stall the port for timeout x retries per tag. The next attempt cleans first anyway.
        ctx.on_step(port, Step.ROLLBACK, device_id)
        _rollback(dev, cfg, touched and not isinstance(err, LinkError))
        _record_failure(ctx, claim, issued, device_id, started, Result.FAILED, code, proof)
        return outcome(
            Status.FAILED,
            error_code=code,
            message=message,
            cert_serial=issued.cert_serial if issued else None,
            bytes_sent=bytes_sent,
            proof=proof,
        )


def registry_entry(
    ctx: StationContext,
    issued: Issued | None,
    device_id: str,
    started: str,
    result: Result,
    code: str | None = None,
    proof: ProofResult | None = None,
    device_uuid: str | None = None,
) -> Entry:
    return Entry(
        device_id=device_id,
        result=result,
        station=ctx.cfg.station,
        operator=ctx.operator,
        started_at=started,
        finished_at=utc_now(),
        # A certificate that was signed is accounted for even if it never reached the device.
        cert_serial=issued.cert_serial if issued else None,
        cert_sha256=issued.cert_sha256 if issued else None,
        root_sha256=issued.root_sha256 if issued else None,
        sec_tags=issued.sec_tags if issued and result is Result.OK else (),
        error_code=code,
        cert_pem=issued.cert_pem if issued else None,
        proof=proof.text() if proof else None,
        device_uuid=device_uuid,
    )


def _record_failure(
    ctx: StationContext,
    claim: Claim,
    issued: Issued | None,
    device_id: str,
    started: str,
    result: Result,
    code: str | None,
    proof: ProofResult | None = None,
) -> None:
    try:
        ctx.registry.record(
            registry_entry(ctx, issued, device_id, started, result, code, proof), claim=claim
        )
    except RegistryError:
        # The registry is unreachable or the claim was taken over: nothing consistent can be
        # written from here. Free the claim if we still can; the outcome line reports it.
        with contextlib.suppress(RegistryError):
            ctx.registry.release(claim)


def _rollback(dev: Device, cfg: StationConfig, touched: bool) -> bool:
    """Best effort: leave none of this attempt's slots on the device. True when the device
    confirmed it (or was never touched)."""
    if not touched:
        return True
    for tag in sorted({t.sec_tag for t in cfg.layout}):
        try:
            dev.delete(tag)
        except Exception:
            # The device may be gone (that may be why we are here); the next attempt cleans.
            return False
    return True
