"""Defaults from `provision.toml`, like esptool's esptool.cfg: a port, a dialect or a CA folder
written once instead of on every command line.

Where: `./provision.toml` (the working directory) and the user's file
(`$XDG_CONFIG_HOME/provision/provision.toml`, else `~/.config/provision/provision.toml`;
`%APPDATA%\\provision\\provision.toml` on Windows). Precedence, highest first:
command-line flag > environment variable (PROVISION_PORT, ...) > ./provision.toml > user file >
built-in default.

Shape: a table per command group holds options for every command of the group; a table per
command (`[device.write]`, `[pki.init-ca]`) holds options for that command and wins over the
group's. Keys are long option names without the dashes:

    [device]
    port = "/dev/ttyACM0"
    dialect = "at-cmng"

    [pki.init-ca]
    cn = "Acme Root CA"
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from provision.errors import InputError
from provision.inputs import read_text

FILE_NAME = "provision.toml"
ENV_FILE = "PROVISION_CONFIG"  # one file instead of the two; empty: none (tests, scripts)


def user_config_path() -> Path:
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "provision" / FILE_NAME
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "provision" / FILE_NAME


def config_paths() -> list[Path]:
    """The files read, lowest precedence first."""
    if ENV_FILE in os.environ:
        chosen = os.environ[ENV_FILE]
        return [Path(chosen)] if chosen else []
    return [user_config_path(), Path.cwd() / FILE_NAME]


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    text = read_text(path, "config")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML ({err})") from None


def load() -> tuple[dict[str, Any], list[Path]]:
    """The merged settings (later files win, key by key) and the files that existed."""
    merged: dict[str, Any] = {}
    found = []
    for path in config_paths():
        data = _read(path)
        if not data and not path.exists():
            continue
        found.append(path)
        for group, table in data.items():
            if not isinstance(table, dict):
                raise InputError(f"{path}: '{group}' must be a table ([{group}])")
            into = merged.setdefault(group, {})
            for key, value in table.items():
                if isinstance(value, dict) and isinstance(into.get(key), dict):
                    into[key] = {**into[key], **value}
                else:
                    into[key] = value
    return merged, found


def defaults_for(settings: dict[str, Any], group: str, command: str | None) -> dict[str, Any]:
    """Option defaults for `provision <group> <command>`: the group's keys, then the
    command's own table over them."""
    table = settings.get(group, {})
    values = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if command is not None and isinstance(table.get(command), dict):
        values.update(table[command])
    return values
