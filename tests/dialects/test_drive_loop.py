"""The one retry loop (provision.dialects.drive.retried) every dialect's requests use: what
it retries, what it never retries, and how many sends it allows."""

from __future__ import annotations

import pytest

from provision.dialects.drive import Garbled, retried
from provision.errors import DeviceError, LinkError


def test_silence_and_garbled_answers_are_retried_with_a_resync_between() -> None:
    answers = iter([None, Garbled(LinkError("garbled", code="x")), "ok"])
    resyncs = []

    def attempt() -> str | None:
        a = next(answers)
        if isinstance(a, Garbled):
            raise a
        return a

    assert retried(attempt, attempts=3, no_answer=LinkError, resync=lambda: resyncs.append(1))
    assert len(resyncs) == 2


def test_the_devices_own_error_reply_ends_the_request_at_once() -> None:
    calls = []

    def attempt() -> str | None:
        calls.append(1)
        raise DeviceError("+CME ERROR: 513", code="at.cme.513")

    with pytest.raises(DeviceError):
        retried(attempt, attempts=6, no_answer=LinkError)
    assert len(calls) == 1


@pytest.mark.parametrize("attempts", [1, 2, 6])
def test_at_most_attempts_sends_and_the_last_garbled_answer_is_the_error(attempts: int) -> None:
    calls = []

    def attempt() -> str | None:
        calls.append(1)
        raise Garbled(LinkError(f"garbled {len(calls)}", code="x"))

    with pytest.raises(LinkError, match=f"garbled {attempts}$"):
        retried(attempt, attempts=attempts, no_answer=lambda: LinkError("silence"))
    assert len(calls) == attempts


def test_silence_to_the_end_is_the_no_answer_error() -> None:
    with pytest.raises(LinkError, match="silence"):
        retried(lambda: None, attempts=3, no_answer=lambda: LinkError("silence"))
