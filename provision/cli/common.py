"""Pieces every command group shares: consoles, tables, password sources, JSON output."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from provision.dialects import DIALECTS
from provision.errors import InputError, UsageError, clip
from provision.inputs import read_first_line


def __getattr__(name: str) -> Any:
    """The consoles and table helpers, made on first use: rich is imported only by a command
    that prints, never by `--help` or the parsing of a command line."""
    if name in ("console", "err_console"):
        from provision.cli.output import PlainConsole

        made = PlainConsole(stderr=name == "err_console")
        if name == "console":
            made.quiet = _quiet
        globals()[name] = made
        return made
    if name in _OUTPUT_NAMES:
        from provision.cli import output

        return getattr(output, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_OUTPUT_NAMES = ("PlainConsole", "PlainTable", "ProvisionTable", "table", "safe_text")
_quiet = False


def configure(*, quiet: bool) -> None:
    """Set for each run (`provision -q`): tests and scripts run the app more than once in one
    process, so a console made by an earlier run is reset too."""
    global _quiet, json_printed
    _quiet = quiet
    made = globals().get("console")
    if made is not None:
        made.quiet = quiet
        made.file = None  # None: stdout, unless `-o -` moves reports to stderr
    json_printed = False


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every terminal control character shown as \\xNN (newlines and tabs kept
    when asked): what comes from files and devices never drives the terminal."""
    keep = "\n\t" if keep_newlines else ""
    return "".join(c if c.isprintable() or c in keep else f"\\x{ord(c):02x}" for c in text)


def say(text: str) -> None:
    """One line of report, as `console.print` prints a string (plain, `-q` silences it), but
    without loading rich for it when no console was made yet: a command whose only output is
    this line (device write, piped) need not import rich at all."""
    made = globals().get("console")
    if made is not None:
        made.print(text)
    elif not _quiet:
        sys.stdout.write(printable(text, keep_newlines=True) + "\n")
        sys.stdout.flush()


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


def _check_dialect(auto: bool) -> Any:
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        valid = [*DIALECTS, "auto"] if auto else list(DIALECTS)
        if value not in valid:
            # A bad command line (exit 2), caught before any port is opened.
            raise typer.BadParameter(f"{clip(value)!r} is not one of: {', '.join(valid)}")
        return value

    return check


def dialect_option(default: str | None, *names: str, auto: bool, help: str | None = None) -> Any:
    """The --dialect option of every command that takes one: checked by the option parser
    (exit 2 naming the valid dialects), its help listing them."""
    return typer.Option(
        default,
        *(names or ("--dialect",)),
        callback=_check_dialect(auto),
        help=help or f"{dialect_choices(auto=auto)}.",
    )


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
        raise UsageError(f"give either {file_option} or {env_option}, not both")
    if password_file is not None:
        return read_first_line(password_file, "password").encode()
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
