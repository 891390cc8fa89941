"""What the registry stores about a device, and the hash that chains the rows.

Pure values and functions: no database here, so the chain rule is the same for every
backend and can be tested on its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum

from provision.errors import PolicyError

GENESIS_HASH = "0" * 64


class Result(str, Enum):
    OK = "ok"  # issued, written, verified on the device
    FAILED = "failed"  # stopped with an error; nothing usable left on the device
    ROLLED_BACK = "rolled_back"  # interrupted (Ctrl-C) and the device was cleaned


@dataclass(frozen=True)
class Entry:
    """One provisioning attempt, as the line hands it to the registry.

    Only public material: the certificate PEM and fingerprints. `__post_init__` refuses
    anything that looks like a private key so a caller's mistake cannot leak one into the
    registry (which is exported and copied around).
    """

    device_id: str
    result: Result
    station: str
    operator: str
    started_at: str  # ISO 8601, UTC
    finished_at: str
    cert_serial: str | None = None  # lower-case hex, no separators
    cert_sha256: str | None = None  # hex digest of the certificate DER
    root_sha256: str | None = None  # hex digest of the first root CA written
    sec_tags: tuple[int, ...] = ()
    error_code: str | None = None
    cert_pem: str | None = field(default=None, repr=False)
    # The post-write mTLS proof as compact JSON (provision.line.proof), None when the station
    # does not ask for one.
    proof: str | None = None
    # The device's own UUID where its dialect reports one (an nRF91 modem's, from the signed
    # %KEYGEN attestation): nRF Cloud knows the device by it.
    device_uuid: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "result", Result(self.result))
        object.__setattr__(self, "sec_tags", tuple(int(t) for t in self.sec_tags))
        if not self.device_id:
            raise PolicyError("a registry entry needs a device id")
        for name in ("cert_pem", "error_code", "station", "operator", "proof"):
            value = getattr(self, name)
            if value and "PRIVATE KEY" in value:
                raise PolicyError(f"refusing to store private key material in registry {name}")


@dataclass(frozen=True)
class Record(Entry):
    """An Entry as stored: its place in the chain and the hashes that bind it."""

    seq: int = 0
    prev_hash: str = GENESIS_HASH
    row_hash: str = ""

    def public_dict(self) -> dict[str, object]:
        """JSON-safe fields for `registry show --json` and export."""
        data = asdict(self)
        data["result"] = self.result.value
        data["sec_tags"] = list(self.sec_tags)
        data["proof"] = json.loads(self.proof) if self.proof else None
        return data


# The fields the hash covers. Adding a field is a schema version bump; a field added later
# (`proof`, schema 2; `device_uuid`, schema 3) is hashed only when set, so rows written before
# it keep their hashes.
HASHED_FIELDS = (
    "seq",
    "device_id",
    "result",
    "station",
    "operator",
    "started_at",
    "finished_at",
    "cert_serial",
    "cert_sha256",
    "root_sha256",
    "sec_tags",
    "error_code",
    "cert_pem",
)
OPTIONAL_HASHED_FIELDS = ("proof", "device_uuid")


def row_hash(entry: Entry, seq: int, prev_hash: str) -> str:
    """sha256 over the previous row's hash and this row's canonical JSON.

    Canonical JSON (sorted keys, no spaces, sec_tags as a list) is the same whatever the
    backend returned, so a SQLite file and a PostgreSQL table hash identically.
    """
    values = {name: getattr(entry, name) for name in HASHED_FIELDS if name != "seq"}
    values.update(seq=seq, result=Result(entry.result).value, sec_tags=list(entry.sec_tags))
    for name in OPTIONAL_HASHED_FIELDS:
        if getattr(entry, name) is not None:
            values[name] = getattr(entry, name)
    body = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(prev_hash.encode() + b"\n" + body.encode()).hexdigest()


def sec_tags_text(sec_tags: tuple[int, ...]) -> str:
    return json.dumps(list(sec_tags), separators=(",", ":"))


def parse_sec_tags(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    return tuple(int(t) for t in json.loads(text))
