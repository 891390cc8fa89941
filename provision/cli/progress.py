"""What a user sees while waiting: a byte-granular transfer bar and a status line, on stderr
and only on a terminal (piped or --json output stays clean). rich.progress is loaded only when
one is shown, so `--help` and piped runs never pay for it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from provision.cli import common

Progress = Callable[[int, int], None]


def interactive() -> bool:
    """A person is watching stderr: bars and status lines make sense there."""
    if os.environ.get("TERM") == "dumb":
        return False
    # rich calls stderr a terminal when it is a tty or the environment says so; a piped run
    # learns it is neither without loading rich.
    told = "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        if not told and not (isatty is not None and isatty()):
            return False
    except ValueError:  # closed
        return False
    return common.err_console.is_terminal


@contextmanager
def transfer_bar(description: str, total: int) -> Iterator[Progress]:
    """A bar that moves with every byte acknowledged: percentage, bytes, rate and time left.

    Yields the callback a transfer calls with (done, total) bytes."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        # Plain text: the console prints no markup (a port name is data).
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(binary_units=False),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=common.err_console,
        transient=True,
        # A slow link (1200 baud: ~120 B/s) still moves the bar and the rate several times a
        # second; the default 10 refreshes per second is enough.
        refresh_per_second=10,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, total_now: int) -> None:
            bar.update(task, completed=done, total=total_now)

        yield update


def opening_status(port: str, dialect: str) -> str:
    """What `--dialect auto` is doing while a silent port makes it wait (seconds per try)."""
    if dialect != "auto":
        return f"opening {port} ({dialect})"
    from provision.device import AUTO_ORDER

    return f"probing {port}: {' … '.join(AUTO_ORDER)} …"


@contextmanager
def status(text: str) -> Iterator[Callable[[str], Any]]:
    """A one-line spinner with `text` while something slow runs (probing a port, a slow read);
    yields a function to change the text. Silent when stderr is not a terminal."""
    if not interactive():
        yield lambda _text: None
        return
    with common.err_console.status(text) as shown:
        yield lambda new: shown.update(new)
