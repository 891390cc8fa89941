"""SIGINT and SIGTERM as one "stop" request for long-running commands (`line run`).

Python turns SIGINT into KeyboardInterrupt wherever the main thread happens to be and leaves
SIGTERM fatal; a station killed that way leaves claims behind. Here both call one handler
that only sets flags, and the command winds down at its own pace.

A process started with SIGINT ignored (a script's `cmd &`, some supervisors) keeps ignoring
it — the Ctrl-C was meant for someone else — unless it is the terminal's foreground job:
a script run at a terminal puts its background children in its own process group, so the
operator's Ctrl-C reaches them too and is meant to stop the whole thing.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

Handler = Callable[[int, Any], None]


def _foreground_of_a_terminal() -> bool:
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                return os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:
            continue
    return False


def wanted_signals() -> list[signal.Signals]:
    """SIGTERM always; SIGINT unless it was ignored at start and no terminal's Ctrl-C can
    be meant for this process."""
    wanted = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN or _foreground_of_a_terminal():
        wanted.append(signal.SIGINT)
    return wanted


@contextlib.contextmanager
def stop_signals(handler: Handler) -> Iterator[list[signal.Signals]]:
    """Route SIGINT and SIGTERM (see wanted_signals) to `handler` inside the block; the
    handlers before it are put back after. Main thread only (Python's rule)."""
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in wanted_signals():
            previous[sig] = signal.signal(sig, handler)
        yield list(previous)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
