"""The station config: one TOML file says how a factory station provisions devices.

    station = "line1-st3"
    registry = "line.sqlite"              # or postgresql://… shared by the line's stations
    dialect = "native"                    # any of provision.dialects.DIALECTS, or auto
    ports = ["/dev/ttyUSB*"]              # paths, globs, pyserial URLs, sim:// or jig:// URLs
    baud = 115200
    fast_baud = "auto"                    # optional: the rate sessions switch to (or a rate)
    flow = "host-key"                     # or "device-keygen": the key never leaves the device
    represented = "allow"                 # a board provisioned before: or "refuse", "supersede"

    [ca]
    cert = "issuing-ca.pem"               # the issuing CA (then its parents, if any)
    key = "issuing-ca.key"                # or "pkcs11:token=…;object=…" (PIN: pin-source/env)
    key_password_env = "CA_KEY_PASSWORD"  # for an encrypted key file (never in this file)

    [profile]
    key_type = "p256"
    days = 365
    subject = "CN={device_id}"            # or e.g. "O=Acme,OU=Line 3,CN={device_id}"

    [[sec_tags]]
    sec_tag = 42
    client = true                         # client_cert (+ client_key) go here
    roots = ["server-root.pem"]           # root_ca certificates for this tag

    [proof]                               # optional: after writing, the device proves its
    server = "127.0.0.1:8443"             # credentials with a mutual-TLS handshake
                                          # (provision.line.proof)

Paths are relative to the config file. Anything secret (CA key password, token PIN) comes
from the environment or a file, never from this file or the command line.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provision.bundle.model import MAX_SEC_TAG
from provision.dialects import DIALECTS
from provision.errors import InputError, clip
from provision.inputs import read_text
from provision.line.proof import ProofConfig, proof_from_dict
from provision.line.schema import check_station_file
from provision.pki.authority import SubjectTemplate
from provision.transport.serial import port_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FLOWS = ("host-key", "device-keygen")
REPRESENTED_POLICIES = ("allow", "refuse", "supersede")


def dialect_names() -> tuple[str, ...]:
    """What `dialect` may be: "auto" and every registered dialect (read at call time, so a
    dialect registered later is accepted too)."""
    return ("auto", *DIALECTS)


@dataclass(frozen=True)
class TagLayout:
    sec_tag: int
    client: bool = False
    roots: tuple[Path, ...] = ()


@dataclass(frozen=True)
class StationConfig:
    station: str
    ca_cert: Path
    ca_key: str  # a path, or a pkcs11: URI
    registry: str = "provision-registry.sqlite"
    operator: str = ""
    dialect: str = "native"
    ports: tuple[str, ...] = ()
    baud: int | None = 115200
    fast_baud: str | None = None  # "auto" or a rate: switched to once a session is open
    flow: str = "host-key"
    key_type: str = "p256"
    days: int = 365
    subject: str = "CN={device_id}"
    layout: tuple[TagLayout, ...] = (TagLayout(42, client=True),)
    ca_key_password_env: str | None = None
    device_timeout: float = 5.0  # one answer from a device
    retries: int = 5
    poll_interval: float = 0.5  # between looks at an empty port
    proof: ProofConfig | None = None  # the post-write mTLS proof, when asked for
    # A board the registry has a valid certificate for, presented again without it (wiped,
    # or --force): issue another and flag it (allow), refuse it, or issue and mark the
    # older certificate superseded in the registry (supersede).
    represented: str = "allow"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def client_tag(self) -> int:
        return next(t.sec_tag for t in self.layout if t.client)

    @property
    def subject_template(self) -> SubjectTemplate:
        """The certificate subject: RFC 4514 attributes, most significant first (CN last)."""
        return SubjectTemplate.parse(self.subject)

    def with_overrides(self, **changes: Any) -> StationConfig:
        changes = {k: v for k, v in changes.items() if v is not None}
        if "ports" in changes:
            changes["ports"] = tuple(changes["ports"])
        return _validated(replace(self, **changes))


def _validated(cfg: StationConfig) -> StationConfig:
    if not cfg.station or not re.match(r"^[A-Za-z0-9._:@-]{1,64}$", cfg.station):
        raise InputError("station: 1-64 letters, digits or . _ : @ -")
    if cfg.flow not in FLOWS:
        raise InputError(f"flow {cfg.flow!r} is not one of: {', '.join(FLOWS)}")
    if cfg.dialect not in dialect_names():
        raise InputError(f"dialect {cfg.dialect!r} is not one of: {', '.join(dialect_names())}")
    SubjectTemplate.parse(cfg.subject)  # InputError names what is wrong with it
    clients = [t for t in cfg.layout if t.client]
    if len(clients) != 1:
        raise InputError("sec_tags: exactly one tag must have client = true")
    tags = [t.sec_tag for t in cfg.layout]
    if len(set(tags)) != len(tags):
        raise InputError("sec_tags: a sec_tag is listed twice")
    for t in tags:
        if not 0 <= t <= MAX_SEC_TAG:
            raise InputError(f"sec_tag {t} out of range (0..{MAX_SEC_TAG})")
    if not 1 <= cfg.days <= 36500:
        raise InputError(f"days {cfg.days} out of range (1..36500)")
    if cfg.baud is not None and cfg.baud <= 0:
        raise InputError("baud must be positive")
    if cfg.represented not in REPRESENTED_POLICIES:
        raise InputError(
            f"represented {cfg.represented!r} is not one of: {', '.join(REPRESENTED_POLICIES)}"
        )
    if cfg.fast_baud is not None and cfg.fast_baud != "auto" and not cfg.fast_baud.isdigit():
        raise InputError(f"fast_baud {cfg.fast_baud!r}: a rate or 'auto'")
    proof_tag = cfg.proof.sec_tag if cfg.proof is not None else None
    if proof_tag is not None and proof_tag != clients[0].sec_tag:
        # The device proves with one tag's slots alone: only the client tag has a certificate.
        raise InputError(
            f"[proof] tag {proof_tag} holds no client certificate "
            f"(the client tag is {clients[0].sec_tag})"
        )
    return cfg


def _path(base: Path, value: Any, what: str) -> Path:
    if not isinstance(value, str) or not value:
        raise InputError(f"{what} must be a file name")
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def load_config(path: Path) -> StationConfig:
    """Read and check a station config; InputError names the problem."""
    try:
        data = tomllib.loads(read_text(path, "station config"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML: {err}") from None
    source = clip(str(path))
    try:
        return config_from_dict(data, Path(path).resolve().parent, source=source)
    except InputError as err:
        if err.message.startswith(source):
            raise
        raise InputError(f"{source}: {err.message}", code=err.code) from None


def config_from_dict(data: dict[str, Any], base: Path, source: str = "config") -> StationConfig:
    known = {
        "station",
        "registry",
        "operator",
        "dialect",
        "ports",
        "baud",
        "fast_baud",
        "flow",
        "ca",
        "profile",
        "sec_tags",
        "device_timeout",
        "retries",
        "poll_interval",
        "proof",
        "represented",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{source}: unknown setting(s): {', '.join(unknown)}")
    ca = data.get("ca") or {}
    if isinstance(ca, dict) and ("password" in ca or "pin" in ca):
        raise InputError(
            f"{source}: secrets do not belong in the config: use [ca] key_password_env, "
            "or pin-source / PROVISION_PKCS11_PIN for a token"
        )
    if isinstance(ca, dict) and ("cert" not in ca or "key" not in ca):
        raise InputError(f"{source}: [ca] needs cert and key")
    # Every table and field has the type it must have (one line naming the field otherwise);
    # the values are read from `data` below as before.
    check_station_file(data, source)
    key = ca["key"]
    ca_key = key if str(key).startswith("pkcs11:") else str(_path(base, key, "[ca] key"))
    profile = data.get("profile") or {}
    layout = []
    for i, tag in enumerate(data.get("sec_tags") or [{"sec_tag": 42, "client": True}]):
        if "sec_tag" not in tag:
            raise InputError(f"{source}: sec_tags[{i}] needs sec_tag")
        roots = tag.get("roots", [])
        if isinstance(roots, str):
            roots = [roots]
        layout.append(
            TagLayout(
                int(tag["sec_tag"]),
                bool(tag.get("client", False)),
                tuple(_path(base, r, "roots entry") for r in roots),
            )
        )
    registry = str(data.get("registry", "provision-registry.sqlite"))
    if "://" not in registry:
        registry = str(_path(base, registry, "registry"))
    ports = data.get("ports", [])
    if isinstance(ports, str):
        ports = [ports]
    try:
        cfg = StationConfig(
            station=str(data.get("station", "")),
            ca_cert=_path(base, ca["cert"], "[ca] cert"),
            ca_key=ca_key,
            registry=registry,
            operator=str(data.get("operator", "")),
            dialect=str(data.get("dialect", "native")),
            ports=tuple(str(p) for p in ports),
            baud=int(data["baud"]) if data.get("baud") else None,
            fast_baud=str(data["fast_baud"]) if data.get("fast_baud") else None,
            flow=str(data.get("flow", "host-key")),
            key_type=str(profile.get("key_type", "p256")),
            days=int(profile.get("days", 365)),
            subject=str(profile.get("subject", "CN={device_id}")),
            layout=tuple(layout),
            ca_key_password_env=ca.get("key_password_env"),
            device_timeout=float(data.get("device_timeout", 5.0)),
            retries=int(data.get("retries", 5)),
            poll_interval=float(data.get("poll_interval", 0.5)),
            proof=proof_from_dict(data["proof"], source) if "proof" in data else None,
            represented=str(data.get("represented", "allow")),
        )
    except (TypeError, ValueError) as err:
        raise InputError(f"{source}: bad value: {err}") from None
    return _validated(cfg)


def expand_ports(patterns: tuple[str, ...]) -> list[str]:
    """Paths and globs → port names (sorted, no duplicates); URLs pass through."""
    ports: list[str] = []
    for pattern in patterns:
        if "://" in pattern or not glob.has_magic(pattern):
            # A named port that exists must look like a serial device (a line never probes
            # a shell's terminal or a file); one not plugged in yet is waited for.
            problem = port_problem(pattern) if os.path.exists(pattern) else None
            if problem is not None:
                raise InputError(f"{clip(pattern)}: {problem}")
            found = [pattern]
        else:
            # Only the matches that look like serial devices: /dev/tty* also matches the
            # consoles and every open terminal.
            found = [p for p in sorted(glob.glob(pattern)) if port_problem(p) is None]
            if not found:
                raise InputError(f"no serial port matches {clip(pattern)!r}")
        for p in found:
            if p not in ports:
                ports.append(p)
    if not ports:
        raise InputError("no ports: give ports in the config or --port")
    return ports


def default_operator() -> str:
    return os.environ.get("PROVISION_OPERATOR") or os.environ.get("USER") or "unknown"
