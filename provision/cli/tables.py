"""How table columns behave when a terminal is narrow: identifiers (file names, serials, ids,
timestamps, ports, digests) stay on one line, so they can be copied and searched; free text
(subjects, messages, descriptions) folds at word boundaries instead.

An identifier only gives way — folds, never ends in "…" — when the identifiers alone do not fit
the width, e.g. a 60-digit serial on a 40-column console."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

# Column headers whose cells are identifiers, most important first: when not all of them fit
# on one line, the first ones keep theirs. Everything else is free text.
IDENTIFIER_COLUMNS = (
    "file",
    "port",
    "device",
    "device_id",
    "serial",
    "finished (UTC)",
    "time",
    "sha256",
    "expires",
    "code",
    "sec_tag",
    "sec_tags",
    "tag",
    "slot",
    "kind",
    "row",
    "result",
    "size",
    "severity",
    "state",
    "ok",
    "skipped",
    "failed",
    "field",
    "encoding",
    "what",
)
# Room a free-text column keeps before identifiers give way.
FREE_TEXT_MIN = 6


def column_options(header: str) -> dict[str, Any]:
    return {"overflow": "fold", "no_wrap": header in IDENTIFIER_COLUMNS}


def _cell_width(cell: Any) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((len(line) for line in text.splitlines()), default=0)


def _priority(header: Any) -> int:
    try:
        return IDENTIFIER_COLUMNS.index(str(header))
    except ValueError:
        return len(IDENTIFIER_COLUMNS)


class IdentifierTable(Table):
    """A rich Table that decides, at render time, which identifier columns fit whole."""

    def __rich_console__(self, console: Any, options: Any) -> Any:
        # Columns with a set width or ratio (the live line view) are laid out as they say.
        ids = [
            c
            for c in self.columns
            if (c.no_wrap or getattr(c, "_identifier", False)) and c.width is None and not c.ratio
        ]
        widest = {
            id(c): max([_cell_width(c.header), *(_cell_width(cell) for cell in c.cells)])
            for c in self.columns
        }
        # Every column at its folded minimum, then identifiers made whole while they fit.
        used = sum(
            2 + (c.width if c.width is not None else min(widest[id(c)], FREE_TEXT_MIN))
            for c in self.columns
        )
        for column in sorted(ids, key=lambda c: _priority(c.header)):
            column._identifier = True  # type: ignore[attr-defined]
            extra = widest[id(column)] - min(widest[id(column)], FREE_TEXT_MIN)
            column.no_wrap = used + extra <= options.max_width
            if column.no_wrap:
                used += extra
        yield from super().__rich_console__(console, options)
