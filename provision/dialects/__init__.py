"""Device dialects: each speaks one device language over a Transport (contract: base.py).

native (our link protocol, provision.link), at-cmng (nRF91 AT%CMNG), at-shell (AT%CMNG through
an NCS shell's `at` command), zephyr-shell (Zephyr TLS credentials shell); lines.py and
drive.py hold what the line-based ones share.

Adding a dialect (docs/dialects.md): a driver module here exporting `PROFILE` and `SESSION`,
a simulator module in provision.sim of the same name exporting `create`, and ONE line in
DIALECTS and one in TARGETS below (and one in AUTO_ORDER if its probe is harmless to every
other device). Nothing else names a dialect. This module imports no dialect: `--help` and the
option checks read these tables, and a dialect's module is loaded when it is used.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, cast

from provision.errors import InputError

if TYPE_CHECKING:
    from provision.bundle.model import CredentialSet
    from provision.dialects.base import DialectProfile, Refusal, SessionFactory, SlotKey

# dialect name → module name, in provision.dialects (driver) and provision.sim (simulator).
# The order is the one `auto` probes in: the native HELLO is harmless to a line-based shell;
# at-shell last, its `at AT` line reaches only a device that none of the others claimed.
DIALECTS: dict[str, str] = {
    "native": "native",
    "at-cmng": "at_cmng",
    "zephyr-shell": "zephyr_shell",
    "at-shell": "at_shell",
    "esp32": "esp32",
}
# dialect name → the device family `check --target` knows it by (each PROFILE.target reads it
# here): help texts and target names come from this table without importing any dialect.
TARGETS: dict[str, str] = {
    "native": "native",
    "at-cmng": "nrf91",
    "zephyr-shell": "zephyr",
    "at-shell": "nrf91",
    "esp32": "esp32",
}
# What `auto` probes: a dialect whose probe is harmless to every other device. The ESP32's
# ROM loader is reached only after a reset into it, so it is named, never probed.
AUTO_ORDER = ("native", "at-cmng", "zephyr-shell", "at-shell")


def _module(name: str) -> ModuleType:
    try:
        module_name = DIALECTS[name]
    except KeyError:
        valid = ", ".join([*DIALECTS, "auto"])
        raise InputError(
            f"unknown dialect {name!r} (valid: {valid})", code="input.unknown_dialect"
        ) from None
    return importlib.import_module(f"provision.dialects.{module_name}")


def session_class(name: str) -> SessionFactory:
    """The session class registered for dialect `name` (imported on first use)."""
    return cast("SessionFactory", _module(name).SESSION)


def dialect_profile(name: str) -> DialectProfile:
    return cast("DialectProfile", _module(name).PROFILE)


def _no_refusals(credentials: CredentialSet) -> list[Refusal]:
    return []


def _as_given(credentials: CredentialSet) -> dict[SlotKey, bytes]:
    return {slot.key: slot.data for slot in credentials}


def _default_profile() -> DialectProfile:
    from provision.bundle.format import MAX_PAYLOAD
    from provision.bundle.model import SlotType
    from provision.dialects.base import DialectProfile

    return DialectProfile(
        dialect="",
        target="default",
        description=f"no device limits beyond the bundle format ({MAX_PAYLOAD} bytes an item)",
        slot_types=frozenset(SlotType),
        capabilities=frozenset(),
        refusals=_no_refusals,
        stored_forms=_as_given,
        encodings="as packed",
    )


def target_names() -> list[str]:
    """Every name `check --target` takes: default, each dialect's target name, each dialect."""
    names = ["default"]
    for dialect in DIALECTS:
        if TARGETS[dialect] not in names:
            names.append(TARGETS[dialect])
    return [*names, *(d for d in DIALECTS if d not in names)]


def profile_for_target(name: str) -> DialectProfile:
    """The profile `check --target NAME` means: a dialect's name or its target name."""
    if name == "default":
        return _default_profile()
    if name in DIALECTS:
        return dialect_profile(name)
    for dialect in DIALECTS:
        if TARGETS[dialect] == name:
            return dialect_profile(dialect)
    raise InputError(
        f"unknown target {name!r} (valid: {', '.join(target_names())})", code="input.unknown_target"
    )
