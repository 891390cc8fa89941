"""Pre-flight check of a credential set: pure data in, findings out.

Every finding has a stable `code` (documented in docs/pki.md) so scripts can act on it.
Nothing here prints, exits or reads files except `check_files`, the thin file wrapper the
CLI uses; secrets never appear in a message.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding as _SerEncoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    DNSName,
    ExtensionPolicy,
    IPAddress,
    PolicyBuilder,
    Store,
    VerificationError,
)

from provision.bundle.model import CredentialSet, Encoding, Slot, SlotFlags, SlotType
from provision.dialects import profile_for_target
from provision.dialects.base import DialectProfile
from provision.errors import CheckFailed, InputError
from provision.pki.certs import is_ca, load_certificates
from provision.pki.files import read_input
from provision.pki.keys import key_is_encrypted, load_private_key, public_key_der

_DER = _SerEncoding.DER
# Device certificates identify the device by CN (nRF Cloud, AWS IoT, Azure DPS do so) and
# rarely carry a SAN; the web PKI end-entity profile would demand one.
_CLIENT_EE = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    sec_tag: int | None = None
    slot: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "sec_tag": self.sec_tag,
            "slot": self.slot,
        }


@dataclass(frozen=True)
class CheckReport:
    findings: tuple[Finding, ...]
    target: str
    checked_at: datetime

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo else now.replace(tzinfo=UTC)


class _Collector:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(
        self,
        code: str,
        severity: Severity,
        message: str,
        sec_tag: int | None = None,
        slot: SlotType | str | None = None,
    ) -> None:
        label = slot.label if isinstance(slot, SlotType) else slot
        self.findings.append(Finding(code, severity, message, sec_tag, label))


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _check_dates(
    out: _Collector,
    cert: x509.Certificate,
    now: datetime,
    warn_days: int,
    sec_tag: int | None,
    slot: SlotType | str,
) -> bool:
    """Add date findings; True when the certificate is valid at `now`."""
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > na:
        out.add(
            "cert.expired",
            Severity.ERROR,
            f"{_name(cert)} expired on {na:%Y-%m-%d %H:%M} UTC",
            sec_tag,
            slot,
        )
        return False
    if now < nb:
        out.add(
            "cert.not_yet_valid",
            Severity.ERROR,
            f"{_name(cert)} is not valid before {nb:%Y-%m-%d %H:%M} UTC",
            sec_tag,
            slot,
        )
        return False
    if na - now <= timedelta(days=warn_days):
        days = (na - now).days
        out.add(
            "cert.expires_soon",
            Severity.WARNING,
            f"{_name(cert)} expires in {days} days ({na:%Y-%m-%d} UTC)",
            sec_tag,
            slot,
        )
    return True


# A line checks the same root in every set it writes: its own signature is verified once.
_SELF_SIGNED: dict[bytes, bool] = {}


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    der = cert.public_bytes(_DER)
    known = _SELF_SIGNED.get(der)
    if known is not None:
        return known
    try:
        cert.verify_directly_issued_by(cert)
        known = True
    except Exception:  # InvalidSignature, or an algorithm the library cannot verify
        known = False
    if len(_SELF_SIGNED) >= 64:
        _SELF_SIGNED.clear()
    _SELF_SIGNED[der] = known
    return known


def _parse_certs(out: _Collector, slot: Slot, source: str) -> list[x509.Certificate] | None:
    try:
        return load_certificates(slot.data, source)
    except InputError as err:
        out.add("cert.unreadable", Severity.ERROR, err.message, slot.sec_tag, slot.type)
        return None


def _validity_overlap(certs: Sequence[x509.Certificate]) -> datetime | None:
    """A time at which every certificate is within its validity, if one exists."""
    start = max(c.not_valid_before_utc for c in certs)
    end = min(c.not_valid_after_utc for c in certs)
    return start if start <= end else None


def _reason(err: Exception) -> str:
    text = str(err).split("\n")[0]
    if "candidates exhausted" in text and "no interior errors" in text:
        return (
            "no path to a trusted root (wrong root, or a missing intermediate: put it after "
            "the leaf in the client_cert file, as NAME.chain.pem from `pki issue`)"
        )
    return text.removeprefix("validation failed: ")


def _verify_client_chain(
    roots: list[x509.Certificate],
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    at: datetime,
) -> str | None:
    """None when leaf chains to one of roots under the client profile, else the reason."""
    try:
        verifier = (
            PolicyBuilder()
            .store(Store(roots))
            .time(at)
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_CLIENT_EE
            )
            .build_client_verifier()
        )
        verifier.verify(leaf, intermediates)
    except (VerificationError, ValueError) as err:  # ValueError: e.g. unsupported key
        return _reason(err)
    return None


def _verify_server_chain(
    roots: list[x509.Certificate],
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    at: datetime,
    hostname: str,
) -> str | None:
    try:
        subject: DNSName | IPAddress
        try:
            subject = IPAddress(ipaddress.ip_address(hostname))
        except ValueError:
            subject = DNSName(hostname)
        verifier = PolicyBuilder().store(Store(roots)).time(at).build_server_verifier(subject)
        verifier.verify(leaf, intermediates)
    except (VerificationError, ValueError) as err:
        return _reason(err)
    return None


def _first_san(cert: x509.Certificate) -> str | None:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    dns = san.get_values_for_type(x509.DNSName)
    if dns:
        return dns[0]
    ips = san.get_values_for_type(x509.IPAddress)
    return str(ips[0]) if ips else None


def _check_roots(
    out: _Collector, roots: list[tuple[Slot, list[x509.Certificate]]], now: datetime, warn: int
) -> None:
    for slot, certs in roots:
        for cert in certs:
            if not is_ca(cert):
                out.add(
                    "root.not_ca",
                    Severity.ERROR,
                    f"{_name(cert)} is not a CA certificate (basicConstraints CA missing)",
                    slot.sec_tag,
                    slot.type,
                )
            if not _self_signed(cert):
                out.add(
                    "root.not_self_signed",
                    Severity.WARNING if is_ca(cert) else Severity.ERROR,
                    f"{_name(cert)} is not self-signed: a device trusts it as a root anyway",
                    slot.sec_tag,
                    slot.type,
                )
            _check_dates(out, cert, now, warn, slot.sec_tag, slot.type)


def _check_eku(out: _Collector, leaf: x509.Certificate, sec_tag: int) -> None:
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        out.add(
            "eku.client_auth_missing",
            Severity.WARNING,
            f"{_name(leaf)} has no extendedKeyUsage; servers that require clientAuth refuse it",
            sec_tag,
            SlotType.CLIENT_CERT,
        )
        return
    if (
        ExtendedKeyUsageOID.CLIENT_AUTH not in eku
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    ):
        out.add(
            "eku.client_auth_missing",
            Severity.ERROR,
            f"{_name(leaf)} lacks the clientAuth extended key usage",
            sec_tag,
            SlotType.CLIENT_CERT,
        )


def _check_key(
    out: _Collector,
    key_slot: Slot,
    password_slot: Slot | None,
    key_password: bytes | None,
    leaf: x509.Certificate | None,
    source: str,
) -> None:
    tag = key_slot.sec_tag
    encrypted = key_is_encrypted(key_slot.data)
    password = password_slot.data if password_slot is not None else key_password
    if encrypted and not (key_slot.flags & SlotFlags.ENCRYPTED) and password_slot is not None:
        out.add(
            "key.flag_missing",
            Severity.INFO,
            "client_key is encrypted but its slot is not flagged ENCRYPTED",
            tag,
            SlotType.CLIENT_KEY,
        )
    if not encrypted and password_slot is not None:
        out.add(
            "key.password_unused",
            Severity.WARNING,
            "a key_password is provisioned but the client_key is not encrypted",
            tag,
            SlotType.KEY_PASSWORD,
        )
    try:
        key = load_private_key(key_slot.data, password if encrypted else None, source)
    except InputError as err:
        code = err.code or "key.invalid"
        out.add(code, Severity.ERROR, err.message, tag, SlotType.CLIENT_KEY)
        return
    if leaf is not None and public_key_der(key) != public_key_der(leaf.public_key()):
        out.add(
            "key.mismatch",
            Severity.ERROR,
            f"client_key does not belong to the client_cert {_name(leaf)}",
            tag,
            SlotType.CLIENT_KEY,
        )


def _with_key_password(credentials: CredentialSet, key_password: bytes | None) -> CredentialSet:
    """The set as it will be written when the key password comes with it (as `bundle pack`
    adds it): the device's limits apply to the password too."""
    if key_password is None:
        return credentials
    added = [
        Slot(s.sec_tag, SlotType.KEY_PASSWORD, Encoding.RAW, key_password)
        for s in credentials
        if s.type is SlotType.CLIENT_KEY
        and s.flags & SlotFlags.ENCRYPTED
        and credentials.get(s.sec_tag, SlotType.KEY_PASSWORD) is None
    ]
    if not added:
        return credentials
    return CredentialSet.of([*credentials, *added], device_id=credentials.device_id)


def _check_profile(out: _Collector, credentials: CredentialSet, profile: DialectProfile) -> None:
    """What the device family cannot hold, as its own dialect's planning finds it."""
    if profile.max_items is not None and len(credentials) > profile.max_items:
        out.add(
            "size.too_many_items",
            Severity.WARNING,
            f"{len(credentials)} items; target {profile.target} holds {profile.max_items} "
            "by default",
        )
    for refusal in profile.refusals(credentials):
        severity = Severity.WARNING if refusal.warning else Severity.ERROR
        out.add(refusal.code, severity, refusal.message, refusal.sec_tag, refusal.slot)


def _check_server(
    out: _Collector,
    roots: list[x509.Certificate],
    server_chain: bytes,
    hostname: str | None,
    now: datetime,
    warn_days: int,
    profile: DialectProfile,
) -> None:
    try:
        chain = load_certificates(server_chain, "server certificate")
    except InputError as err:
        out.add("server.unreadable", Severity.ERROR, err.message, slot="server_chain")
        return
    leaf, intermediates = chain[0], chain[1:]
    for cert in chain:
        _check_dates(out, cert, now, warn_days, None, "server_chain")
    if profile.server_chain_limit is not None:
        size = sum(len(c.public_bytes(_DER)) for c in chain)
        if size > profile.server_chain_limit:
            out.add(
                "size.too_large",
                Severity.ERROR,
                f"server chain is {size} bytes DER; target {profile.target} handles at most "
                f"{profile.server_chain_limit} (larger chains crashed the modem)",
                slot="server_chain",
            )
    if not roots:
        out.add(
            "server.untrusted",
            Severity.ERROR,
            "no root_ca is provisioned, so the device cannot trust any server",
            slot="server_chain",
        )
        return
    name = hostname or _first_san(leaf)
    if name is None:
        out.add(
            "server.hostname_missing",
            Severity.WARNING,
            "no --server-hostname given and the server certificate has no SAN",
            slot="server_chain",
        )
        return
    at = now
    if _verify_server_chain(roots, leaf, intermediates, at, name) is None:
        if hostname is None:
            out.add(
                "server.hostname_assumed",
                Severity.INFO,
                f"checked the server chain for {name} (its first SAN); give a hostname to check it",
                slot="server_chain",
            )
        return
    # Dates were reported above; judge trust and name at a time when everything is valid.
    overlap = _validity_overlap([*chain, *roots]) or now
    own = _first_san(leaf)
    reason = _verify_server_chain(roots, leaf, intermediates, overlap, name)
    if reason is None:
        return
    if (
        own is not None
        and own != name
        and _verify_server_chain(roots, leaf, intermediates, overlap, own) is None
    ):
        out.add(
            "server.hostname_mismatch",
            Severity.ERROR,
            f"server certificate {_name(leaf)} is not valid for {name}",
            slot="server_chain",
        )
        return
    out.add(
        "server.untrusted",
        Severity.ERROR,
        f"server certificate {_name(leaf)} does not verify under the provisioned roots: {reason}",
        slot="server_chain",
    )


def check_credential_set(
    credentials: CredentialSet,
    *,
    target: str = "default",
    key_password: bytes | None = None,
    now: datetime | None = None,
    expiry_warning_days: int = 30,
    server_chain: bytes | None = None,
    server_hostname: str | None = None,
) -> list[Finding]:
    """All findings for a credential set, errors first. Never raises for bad content."""
    profile = profile_for_target(target)
    now = _utc(now)
    out = _Collector()
    all_roots: list[x509.Certificate] = []
    for tag in credentials.sec_tags:
        roots: list[tuple[Slot, list[x509.Certificate]]] = []
        for slot in credentials.roots(tag):
            certs = _parse_certs(out, slot, f"root_ca in sec_tag {tag}")
            if certs is not None:
                roots.append((slot, certs))
        _check_roots(out, roots, now, expiry_warning_days)
        tag_roots = [c for _, certs in roots for c in certs]
        all_roots.extend(tag_roots)

        leaf: x509.Certificate | None = None
        cert_slot = credentials.get(tag, SlotType.CLIENT_CERT)
        if cert_slot is not None:
            chain = _parse_certs(out, cert_slot, f"client_cert in sec_tag {tag}")
            if chain is not None:
                leaf, intermediates = chain[0], chain[1:]
                valid = all(
                    [
                        _check_dates(out, c, now, expiry_warning_days, tag, SlotType.CLIENT_CERT)
                        for c in chain
                    ]
                )
                _check_eku(out, leaf, tag)
                _check_client_chain(out, tag, tag_roots, leaf, intermediates, now, valid)
        key_slot = credentials.get(tag, SlotType.CLIENT_KEY)
        if key_slot is not None:
            _check_key(
                out,
                key_slot,
                credentials.get(tag, SlotType.KEY_PASSWORD),
                key_password,
                leaf,
                f"client_key in sec_tag {tag}",
            )
        elif cert_slot is not None:
            out.add(
                "key.missing",
                Severity.INFO,
                "client_cert without a client_key (fine if the device generated its own key)",
                tag,
                SlotType.CLIENT_CERT,
            )
    _check_profile(out, _with_key_password(credentials, key_password), profile)
    if server_chain is not None:
        _check_server(
            out, all_roots, server_chain, server_hostname, now, expiry_warning_days, profile
        )
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return sorted(out.findings, key=lambda f: order[f.severity])


def _check_client_chain(
    out: _Collector,
    tag: int,
    roots: list[x509.Certificate],
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    now: datetime,
    dates_ok: bool,
) -> None:
    if not roots:
        out.add(
            "chain.no_root",
            Severity.WARNING,
            f"no root_ca in sec_tag {tag}: the client chain was not verified",
            tag,
            SlotType.CLIENT_CERT,
        )
        return
    reason = _verify_client_chain(roots, leaf, intermediates, now)
    if reason is None:
        return
    if not dates_ok or any(
        now > r.not_valid_after_utc or now < r.not_valid_before_utc for r in roots
    ):
        # The date findings already say why; only report trust if it fails regardless of time.
        overlap = _validity_overlap([leaf, *intermediates, *roots])
        if (
            overlap is not None
            and _verify_client_chain(roots, leaf, intermediates, overlap) is None
        ):
            return
    out.add(
        "chain.untrusted",
        Severity.ERROR,
        f"client_cert {_name(leaf)} does not chain to a root_ca in sec_tag {tag}: {reason}",
        tag,
        SlotType.CLIENT_CERT,
    )


def worst(findings: Sequence[Finding]) -> Severity | None:
    for sev in (Severity.ERROR, Severity.WARNING, Severity.INFO):
        if any(f.severity is sev for f in findings):
            return sev
    return None


def exit_code_for(findings: Sequence[Finding], *, strict: bool) -> int:
    """0 clean, 1 warnings (only with strict), 2 errors — the documented check exit codes."""
    sev = worst(findings)
    if sev is Severity.ERROR:
        return 2
    if sev is Severity.WARNING and strict:
        return 1
    return 0


def refuse_errors(findings: Sequence[Finding], override: str) -> None:
    """CheckFailed naming the first error finding (and how many more), if there is one;
    `override` tells how to go ahead anyway ("--force writes anyway")."""
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise CheckFailed(
            f"check failed: {errors[0].message}{more}; nothing written ({override})",
            code=errors[0].code,
        )


def _encoding_of(data: bytes) -> Encoding:
    return Encoding.PEM if b"-----BEGIN " in data else Encoding.DER


def load_credential_files(
    *,
    roots: Sequence[Path],
    client_cert: Path | None,
    client_key: Path | None = None,
    chain: Path | None = None,
    sec_tag: int = 0,
) -> CredentialSet:
    """Read files into a one-tag CredentialSet. Missing or unreadable files raise InputError,
    and so do certificates that are not PEM/DER (they could not be provisioned at all)."""
    slots: list[Slot] = []
    for path in roots:
        data = read_input(path, "root certificate")
        load_certificates(data, str(path))
        slots.append(Slot(sec_tag, SlotType.ROOT_CA, _encoding_of(data), data))
    if client_cert is not None:
        data = read_input(client_cert, "client certificate")
        load_certificates(data, str(client_cert))
        if chain is not None:
            extra = read_input(chain, "chain")
            load_certificates(extra, str(chain))
            if _encoding_of(data) is Encoding.DER or _encoding_of(extra) is Encoding.DER:
                from provision.pki.certs import to_pem

                data = to_pem(data, str(client_cert)) + to_pem(extra, str(chain))
            else:
                data = data.rstrip(b"\r\n") + b"\n" + extra
        slots.append(Slot(sec_tag, SlotType.CLIENT_CERT, _encoding_of(data), data))
    if client_key is not None:
        data = read_input(client_key, "private key")
        flags = SlotFlags.ENCRYPTED if key_is_encrypted(data) else SlotFlags.NONE
        slots.append(Slot(sec_tag, SlotType.CLIENT_KEY, _encoding_of(data), data, flags))
    return CredentialSet.of(slots)


def check_files(
    *,
    roots: Sequence[Path],
    client_cert: Path | None,
    client_key: Path | None = None,
    chain: Path | None = None,
    key_password: bytes | None = None,
    target: str = "default",
    now: datetime | None = None,
    expiry_warning_days: int = 30,
    server_cert: Path | None = None,
    server_hostname: str | None = None,
) -> CheckReport:
    """The CLI's entry: read files, check, and report (key messages name the key file)."""
    profile_for_target(target)
    credentials = load_credential_files(
        roots=roots, client_cert=client_cert, client_key=client_key, chain=chain
    )
    server_data = read_input(server_cert, "server certificate") if server_cert else None
    if server_data is not None:
        load_certificates(server_data, str(server_cert))
    findings = check_credential_set(
        credentials,
        target=target,
        key_password=key_password,
        now=now,
        expiry_warning_days=expiry_warning_days,
        server_chain=server_data,
        server_hostname=server_hostname,
    )
    if client_key is not None:
        # Name the file the user gave rather than the slot it became.
        findings = [
            Finding(
                f.code,
                f.severity,
                f.message.replace("client_key in sec_tag 0", str(client_key)),
                f.sec_tag,
                f.slot,
            )
            for f in findings
        ]
    return CheckReport(tuple(findings), target, _utc(now))
