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

from provision.dialects import DIALECTS
from provision.errors import InputError, UsageError, clip
from provision.inputs import read_first_line


class PlainConsole(Console):
    """A console that prints strings literally: no rich markup, no emoji codes, no terminal
    control characters (newlines and tabs kept).

    Device ids, subjects, device replies, registry values and file names reach nearly every
    line a command prints; a `[/red]` in any of them made rich raise MarkupError (exit 70).
    Styled output is a `Text` built by the caller (e.g. `Text("✗", style="red")`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, soft_wrap=True, **kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.pop("markup", None)  # never markup, whatever a caller asks
        kwargs.pop("emoji", None)
        super().print(
            *(safe_text(o, keep_newlines=True) if isinstance(o, str) else o for o in objects),
            **kwargs,
        )


console = PlainConsole()
err_console = PlainConsole(stderr=True)

PASSWORD_FILE_HELP = "Read the password from this file (first line)."
PASSWORD_ENV_HELP = "Read the password from this environment variable."


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


class PlainTable(Table):
    """A rich Table whose string cells are plain text (see `safe_text`): callers pass values
    as they are and cannot forget to escape one."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(safe_text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def table(*columns: str, title: str | None = None, show_header: bool = True) -> Table:
    """A table in the one style every command prints: borderless, bold header, title on the
    left. More columns (with their own options) can be added to it. Cells are plain text."""
    result = PlainTable(
        box=None,
        header_style="bold",
        show_header=show_header,
        title=safe_text(title) if title is not None else None,
        title_justify="left",
    )
    for column in columns:
        # Fold, never cut: a file name, serial or time ending in "…" is useless (two
        # "ca/intermediate.…" rows could not be told apart in an 80-column log).
        result.add_column(column, overflow="fold")
    return result


def safe_text(value: object, *, keep_newlines: bool = False) -> Text:
    """Plain text for a table cell or a line: no rich markup, no terminal control characters.

    Subjects, identities, port names and error texts come from files and devices, i.e. from
    anyone. A Text passes through unchanged (it is already literal)."""
    if isinstance(value, Text):
        return value
    keep = "\n\t" if keep_newlines else ""
    text = str(value)
    return Text("".join(c if c.isprintable() or c in keep else f"\\x{ord(c):02x}" for c in text))


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
    sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
