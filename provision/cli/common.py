"""Pieces every command group shares: consoles, tables, password sources, JSON output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from provision.cli.tables import IdentifierTable, column_options
from provision.dialects import DIALECTS
from provision.errors import InputError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

PASSWORD_FILE_HELP = "Read the password from this file (first line)."
PASSWORD_ENV_HELP = "Read the password from this environment variable."
PORT_HELP = (
    "The device: /dev/ttyACM0 (Linux), /dev/cu.usbmodem1101 (macOS), COM3 (Windows), a "
    "pyserial URL (socket://HOST:PORT, rfc2217://HOST:PORT), sim://DIALECT, or auto (the one "
    "USB serial port)."
)


def dialect_choices(*, auto: bool) -> str:
    """The dialects a --dialect option takes, for its help: provision.dialects.DIALECTS, and
    `auto` (probe the port) where the command can probe."""
    names = [*DIALECTS, "auto (probe the port)"] if auto else list(DIALECTS)
    return ", ".join(names[:-1]) + " or " + names[-1]


def table(*columns: str, title: str | None = None, show_header: bool = True) -> Table:
    """A table in the one style every command prints: borderless, bold header, title on the
    left; identifier columns (cli/tables.py) stay on one line. More columns (with their own
    options) can be added to it."""
    result = IdentifierTable(
        box=None,
        header_style="bold",
        show_header=show_header,
        title=title,
        title_justify="left",
    )
    for column in columns:
        # Fold, never cut: a file name, serial or time ending in "…" is useless (two
        # "ca/intermediate.…" rows could not be told apart in an 80-column log).
        result.add_column(column, **column_options(column))
    return result


def safe_text(value: object) -> Text:
    """Plain text for a table cell or a line: no rich markup, no terminal control characters.

    Subjects, identities, port names and error texts come from files and devices, i.e. from
    anyone."""
    text = str(value)
    return Text("".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text))


def resolve_password(
    *,
    password_file: Path | None,
    password_env: str | None,
    prompt: str | None = None,
    confirm: bool = False,
    options: tuple[str, str] = ("--password-file", "--password-env"),
) -> bytes | None:
    """Return a password from a file, an environment variable or an interactive prompt.

    A password is never taken as a plain command-line argument: it would end up in shell
    history and in `ps` output. Returns None when no source was named and `prompt` is None.
    `options` names the command's file and environment options in messages (a CA key's are
    not the new key's).
    """
    file_option, env_option = options
    if password_file is not None and password_env is not None:
        raise InputError(f"give either {file_option} or {env_option}, not both")
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except OSError as err:
            raise InputError(
                f"{password_file}: cannot read password file: {err.strerror}"
            ) from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise InputError(f"{password_file}: password file is empty")
        return lines[0].encode()
    if password_env is not None:
        value = os.environ.get(password_env)
        if not value:
            raise InputError(f"environment variable {password_env} is not set or empty")
        return value.encode()
    if prompt is None:
        return None
    if not sys.stdin.isatty() and os.environ.get("PROVISION_ALLOW_PIPED_PASSWORD") != "1":
        # A prompt with no terminal would hang a factory script or CI job.
        raise InputError(
            f"{prompt} needed, but there is no terminal to prompt on: "
            f"use {file_option} or {env_option}"
        )
    value = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return value.encode()


def print_json(data: Any) -> None:
    """Print one JSON document on stdout (no rich markup, stable key order)."""
    global json_printed
    sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
    json_printed = True


# Set once a command has printed its JSON document: a failure after it (verify found
# differences) does not add a second one (cli/conventions.py json_error).
json_printed = False
