"""The shape of a station config file (TOML), checked before any value is used.

pydantic (v2, strict: TOML already has types, so "42" is not an integer and 1 is not true)
checks every table and field; the first problem becomes one InputError line naming the
file, the field path (`sec_tags[0].sec_tag`) and what was expected. Meaning (ranges, known
dialects, one client tag) is checked afterwards by provision.line.config.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from provision.errors import InputError, clip


class _Table(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class CATable(_Table):
    cert: str = Field(min_length=1)
    key: str = Field(min_length=1)
    key_password_env: str | None = None


class ProfileTable(_Table):
    key_type: str = "p256"
    days: int = 365
    subject: str = "CN={device_id}"


class SecTagTable(_Table):
    sec_tag: int
    client: bool = False
    roots: str | list[str] = []


class StationFile(_Table):
    station: str = ""
    registry: str = "provision-registry.sqlite"
    operator: str = ""
    dialect: str = "native"
    ports: str | list[str] = []
    baud: int | None = None
    flow: str = "host-key"
    ca: CATable
    profile: ProfileTable = ProfileTable()
    sec_tags: list[SecTagTable] | None = None
    device_timeout: float = 5.0
    retries: int = 5
    poll_interval: float = 0.5
    # Its allowed values are config.py's (REPRESENTED_POLICIES), checked with the others there.
    represented: str = "allow"
    # "auto" or a rate; config.py checks which.
    fast_baud: int | str | None = None
    # [proof] has its own checks (provision.line.proof.proof_from_dict).
    proof: Any = None


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "an array",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
    "string_too_short": "a non-empty string",
}


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("str", "list[str]", "int", "none", "float", "bool"):
            continue  # the branch of a union pydantic tried, not a field
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def check_station_file(data: dict[str, Any], source: str) -> StationFile:
    """The parsed TOML document as a StationFile; the first problem is an InputError."""
    try:
        return StationFile.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        path = _field_path(tuple(first["loc"]))
        kind = first["type"]
        if kind == "missing" and path == "ca":
            raise InputError(f"{source}: [ca] needs cert and key") from None
        if kind == "missing":
            raise InputError(f"{source}: {path}: required setting missing") from None
        if kind == "extra_forbidden":
            raise InputError(f"{source}: {path}: unknown setting") from None
        expected = _EXPECTED.get(kind, first["msg"].lower())
        if any(part in ("str", "list[str]") for part in first["loc"]):
            expected = "a string or an array of strings"
        got = first.get("input")
        raise InputError(
            f"{source}: {path}: expected {expected}, got {clip(repr(got), 40)}"
        ) from None
