"""The one retry loop every dialect's requests go through.

Each dialect says how to make one attempt (send, then wait for the answer within its own
per-try timeout) and what an answer means; this loop owns how often and what is retried:

- an attempt that returns None (nothing came back) or raises `Garbled` (something came back
  that the line, not the device, got wrong) is a remote protocol error: the line is
  resynchronised and the request sent again;
- anything else an attempt raises — the device's own error reply — ends the request at once;
- at most `attempts` sends in all (1 + retries), and the last remote protocol error is what
  the caller sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from provision.errors import ProvisionError

T = TypeVar("T")


class Garbled(Exception):
    """An answer the line garbled (a retry may succeed); `error` is what to raise if it
    was the last try."""

    def __init__(self, error: ProvisionError) -> None:
        super().__init__(error.message)
        self.error = error


def retried(
    attempt: Callable[[], T | None],
    *,
    attempts: int,
    no_answer: Callable[[], ProvisionError],
    resync: Callable[[], None] | None = None,
) -> T:
    """`attempt()` until it returns an answer, at most `attempts` times."""
    failure: ProvisionError | None = None
    for n in range(max(1, attempts)):
        if n and resync is not None:
            resync()
        try:
            answer = attempt()
        except Garbled as garbled:
            failure = garbled.error
            continue
        if answer is not None:
            return answer
        failure = None  # silence after a garbled answer: say what the last try saw
    raise failure if failure is not None else no_answer()
