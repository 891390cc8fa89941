"""What commands print with rich: plain-text consoles and tables (cli/common.py hands them
out; this module is imported only when a command prints, never for `--help`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from provision.cli.common import printable
from provision.cli.tables import IdentifierTable, column_options


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


class PlainTable(Table):
    """A rich Table whose string cells are plain text (see `safe_text`): callers pass values
    as they are and cannot forget to escape one."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(safe_text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


class ProvisionTable(PlainTable, IdentifierTable):
    """Plain-text cells (PlainTable) whose identifier columns stay whole (IdentifierTable)."""


def table(*columns: str, title: str | None = None, show_header: bool = True) -> Table:
    """A table in the one style every command prints: borderless, bold header, title on the
    left; identifier columns (cli/tables.py) stay on one line. More columns (with their own
    options) can be added to it. Cells are plain text."""
    result = ProvisionTable(
        box=None,
        header_style="bold",
        show_header=show_header,
        title=safe_text(title) if title is not None else None,
        title_justify="left",
    )
    for column in columns:
        # Fold, never cut: a file name, serial or time ending in "…" is useless (two
        # "ca/intermediate.…" rows could not be told apart in an 80-column log).
        result.add_column(column, **column_options(column))
    return result


def safe_text(value: object, *, keep_newlines: bool = False) -> Text:
    """Plain text for a table cell or a line: no rich markup, no terminal control characters.

    Subjects, identities, port names and error texts come from files and devices, i.e. from
    anyone. A Text passes through unchanged (it is already literal)."""
    if isinstance(value, Text):
        return value
    return Text(printable(str(value), keep_newlines=keep_newlines))
